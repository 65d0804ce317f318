"""python -m services.baseline — the bigram gRPC service (configuration: see config.py)."""
from services.baseline.config import BaselineConfig
from services.baseline.server import serve
from services.common.server import run_service

run_service(BaselineConfig.from_env(), serve)

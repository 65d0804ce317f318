"""python -m services.baseline — the bigram gRPC service (--help lists its environment variables)."""
from services.baseline.config import BaselineConfig
from services.baseline.server import serve
from services.common.server import run_service

run_service(BaselineConfig, serve, __doc__)

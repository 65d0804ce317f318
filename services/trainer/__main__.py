"""python -m services.trainer — the trainer gRPC service (--help lists its environment variables)."""
from services.common.server import run_service
from services.trainer.config import TrainerConfig
from services.trainer.server import serve

run_service(TrainerConfig, serve, __doc__)

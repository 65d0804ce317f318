"""python -m services.rnn — the LSTM gRPC service (configuration: see config.py; model: python -m services.rnn.train)."""
from services.common.server import run_service
from services.rnn.config import RnnConfig
from services.rnn.server import serve

run_service(RnnConfig.from_env(), serve)

"""python -m services.rnn — the LSTM gRPC service (--help lists its environment variables).

It only loads MODELS_DIR/rnn; train that with `make rnn-model` or `python -m services.rnn.train`."""
from services.common.server import run_service
from services.rnn.config import RnnConfig
from services.rnn.server import serve

run_service(RnnConfig, serve, __doc__)

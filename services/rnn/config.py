import dataclasses

from services.common.config import ServiceConfig, env_field
from services.common.corpus import DEFAULT_CHAPTERS, DEFAULT_CORPUS
from textgen.endpoints import ENDPOINTS


@dataclasses.dataclass(frozen=True)
class RnnConfig(ServiceConfig):
    port: int = env_field(ENDPOINTS["rnn"].port_variable, ENDPOINTS["rnn"].port, "gRPC port (0 picks a free one)")
    metrics_port: int = env_field("RNN_METRICS_PORT", -1, "Prometheus port; 0 picks a free one, -1 disables")
    # One intra-op thread per request: a one-word LSTM step is too small to split, and concurrent requests run in
    # parallel threads (torch releases the GIL) instead of fighting over the same cores.
    torch_threads: int = env_field("RNN_TORCH_THREADS", 1, "torch intra-op threads per generation")
    # Read by `python -m services.rnn.train`, which the server never runs itself.
    corpus: str = env_field("CORPUS", DEFAULT_CORPUS, "training text: a path or an http(s) URL")
    corpus_chapters: str = env_field("CORPUS_CHAPTERS", DEFAULT_CHAPTERS, "'first-last' chapters to keep; '' = all")

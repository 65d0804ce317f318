import dataclasses

from services.common.config import ServiceConfig, env_field
from services.common.corpus import DEFAULT_CHAPTERS, DEFAULT_CORPUS
from textgen.endpoints import ENDPOINTS


@dataclasses.dataclass(frozen=True)
class BaselineConfig(ServiceConfig):
    port: int = env_field(ENDPOINTS["baseline"].port_variable, ENDPOINTS["baseline"].port, "gRPC port (0 picks a free one)")
    metrics_port: int = env_field("BASELINE_METRICS_PORT", -1, "Prometheus port; 0 picks a free one, -1 disables")
    corpus: str = env_field("CORPUS", DEFAULT_CORPUS, "training text: a path or an http(s) URL")
    corpus_chapters: str = env_field("CORPUS_CHAPTERS", DEFAULT_CHAPTERS, "'first-last' chapters to keep; '' = all")

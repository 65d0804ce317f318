"""How long Envoy lets each service's calls run: unary calls get `timeout_seconds`, server streams
`stream_timeout_seconds` (a training job's event stream lasts as long as the job). Keyed by gRPC service; where each
service listens is textgen.endpoints' table.
"""
import dataclasses

from gateway import openai_routes
from textgen.endpoints import ENDPOINTS, Endpoint


@dataclasses.dataclass(frozen=True)
class Backend:
    endpoint: Endpoint
    timeout_seconds: float
    stream_timeout_seconds: float

    @property
    def name(self) -> str:
        return self.endpoint.name


_TIMEOUTS = {"baseline": (30, 60), "rnn": (60, 60), "llm": (300, 600), "trainer": (60, 86400)}
BACKENDS = {e.grpc_service: Backend(e, *_TIMEOUTS[e.name]) for e in ENDPOINTS.values()}
# The llm process serves the OpenAI-compatible services too (gateway/openai_routes.py): routed as LlmService is.
BACKENDS |= dict.fromkeys(openai_routes.SERVICES, BACKENDS[ENDPOINTS["llm"].grpc_service])

"""Which backend serves each gRPC service: one table for the Envoy renderer, make run and compose's check.

`name` is the docker-compose service and the Envoy cluster; `timeout_seconds` bounds unary calls through the gateway
(streams get `stream_timeout_seconds`: a training job's event stream lasts as long as the job).
"""
import dataclasses
import os
from collections.abc import Mapping


@dataclasses.dataclass(frozen=True)
class Backend:
    name: str
    port: int
    timeout_seconds: float
    stream_timeout_seconds: float

    @property
    def port_variable(self) -> str:
        return f"{self.name.upper()}_PORT"

    @property
    def address_variable(self) -> str:
        return f"{self.name.upper()}_ADDR"

    def address(self, environ: Mapping[str, str] = os.environ) -> str:
        """<NAME>_ADDR when set, else loopback at <NAME>_PORT (or the default port)."""
        return environ.get(self.address_variable) or f"127.0.0.1:{environ.get(self.port_variable, self.port)}"


BACKENDS = {
    "textgen.v1.BigramService": Backend("baseline", 50051, 30, 60),
    "textgen.v1.RnnService": Backend("rnn", 50052, 60, 60),
    "textgen.v1.LlmService": Backend("llm", 50053, 300, 600),
    "textgen.v1.TrainerService": Backend("trainer", 50054, 60, 86400),
}

"""Where each gRPC service listens: the one table behind the services' own port settings, the client's and make
run's addresses, Envoy's clusters and compose's service names (a test ties docker-compose.yml to it).

`name` is the service's package (services.<name>), its compose service and its Envoy cluster.
"""
import dataclasses
import os
from collections.abc import Mapping


@dataclasses.dataclass(frozen=True)
class Endpoint:
    name: str
    grpc_service: str
    port: int

    @property
    def port_variable(self) -> str:
        return f"{self.name.upper()}_PORT"

    @property
    def address_variable(self) -> str:
        return f"{self.name.upper()}_ADDR"

    def address(self, environ: Mapping[str, str] = os.environ) -> str:
        """<NAME>_ADDR when set, else loopback at <NAME>_PORT (or the default port)."""
        return environ.get(self.address_variable) or f"127.0.0.1:{environ.get(self.port_variable, self.port)}"


ENDPOINTS = {e.name: e for e in [
    Endpoint("baseline", "textgen.v1.BigramService", 50051),
    Endpoint("rnn", "textgen.v1.RnnService", 50052),
    Endpoint("llm", "textgen.v1.LlmService", 50053),
    Endpoint("trainer", "textgen.v1.TrainerService", 50054),
]}

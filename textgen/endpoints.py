"""Where each gRPC service listens: the one table behind the services' own port settings, the client's and make
run's addresses, Envoy's clusters and compose's service names (a test ties docker-compose.yml to it); and where
Envoy, the REST gateway in front of them, listens.

`name` is the service's package (services.<name>), its compose service and its Envoy cluster.
"""
import dataclasses
import ipaddress
import os
from collections.abc import Mapping

# Where every service and Envoy listen under `make run` unless BIND_ADDRESS opens them: only this machine can call
# them. The images set BIND_ADDRESS=0.0.0.0, since a container's network is private to its deployment.
LOOPBACK = "127.0.0.1"


# Envoy's REST port and its admin port, unless GATEWAY_PORT and GATEWAY_ADMIN_PORT say otherwise (the gateway's
# renderer, make run's supervisor and the compose check all read them here).
GATEWAY_PORT = 8080
GATEWAY_ADMIN_PORT = 9901


def bind_address(environ: Mapping[str, str] = os.environ) -> str:
    return environ.get("BIND_ADDRESS") or LOOPBACK


def is_loopback(address: str) -> bool:
    try:
        return address == "localhost" or ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False


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
        return environ.get(self.address_variable) or f"{LOOPBACK}:{environ.get(self.port_variable, self.port)}"


ENDPOINTS = {e.name: e for e in [
    Endpoint("baseline", "textgen.v1.BigramService", 50051),
    Endpoint("rnn", "textgen.v1.RnnService", 50052),
    Endpoint("llm", "textgen.v1.LlmService", 50053),
    Endpoint("trainer", "textgen.v1.TrainerService", 50054),
]}

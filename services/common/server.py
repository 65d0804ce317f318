"""The grpc.aio start-up every service shares: health, reflection, metrics, logging, graceful shutdown.

    async def main():
        config = BaselineConfig.from_env()
        server = GrpcServer(config, [Binding(SERVICE, add_BigramServiceServicer_to_server, servicer)])
        await server.run()              # until SIGTERM/SIGINT; in-flight calls get grace_seconds
"""
import asyncio
import dataclasses
import logging
import signal
import sys
from collections.abc import Awaitable, Callable

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from services.common.config import ServiceConfig
from services.common.logs import setup_logging
from services.common.metrics import MetricsInterceptor, start_metrics_server
from services.common.undecodable import UndecodableRequests

log = logging.getLogger("textgen.server")

# Health reports two things. Readiness, for each service and the server as a whole (""): SERVING once it can
# answer (a model loaded...). Liveness ("liveness"): SERVING while the process runs, so that a service waiting for
# a model is kept out of rotation, not restarted (Kubernetes' liveness probes ask for it).
LIVENESS = "liveness"

MAX_MESSAGE_BYTES = 8 * 1024 * 1024


def _host(address: str) -> str:
    """An address as gRPC wants it before ":port": IPv6 ones in brackets."""
    return f"[{address}]" if ":" in address and not address.startswith("[") else address


@dataclasses.dataclass
class Binding:
    """One service to serve: its descriptor, the generated add_*_to_server function and the servicer."""

    descriptor: ServiceDescriptor
    add_to_server: Callable[[object, grpc.aio.Server], None]
    servicer: object


class GrpcServer:
    def __init__(self, config: ServiceConfig, bindings: list[Binding]) -> None:
        self.config = config
        self.bindings = bindings
        self.health = health.aio.HealthServicer()
        self.port: int | None = None
        self._server = grpc.aio.server(
            interceptors=[MetricsInterceptor(), UndecodableRequests()],
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.so_reuseport", 0),
            ],
        )
        self._stopping = asyncio.Event()

    @property
    def service_names(self) -> list[str]:
        return [b.descriptor.full_name for b in self.bindings]

    async def set_serving(self, serving: bool, reason: str = "") -> None:
        """Readiness as the health service reports it, for each service and for the server as a whole ("")."""
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in [*self.service_names, ""]:
            await self.health.set(name, status)
        log.info("readiness changed", extra={"serving": serving, "reason": reason})

    async def start(self) -> int:
        for binding in self.bindings:
            binding.add_to_server(binding.servicer, self._server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._server)
        reflection.enable_server_reflection(
            [*self.service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], self._server
        )
        try:
            self.port = self._server.add_insecure_port(f"{_host(self.config.bind_address)}:{self.config.port}")
        except RuntimeError:  # grpcio raises this when the port is taken
            self.port = 0
        if self.port == 0:
            raise SystemExit(f"cannot bind {self.config.bind_address} port {self.config.port}: is the port in use, "
                             "or BIND_ADDRESS not an address of this machine?")
        await self._server.start()
        await self.health.set(LIVENESS, health_pb2.HealthCheckResponse.SERVING)
        metrics_port = start_metrics_server(self.config.metrics_port, self.config.bind_address)
        log.info(
            "listening",
            extra={"port": self.port, "services": self.service_names, "metrics_port": metrics_port},
        )
        return self.port

    def request_stop(self) -> None:
        self._stopping.set()

    async def stop(self) -> None:
        await self.set_serving(False, "shutting down")
        log.info("stopping", extra={"grace_seconds": self.config.grace_seconds})
        await self._server.stop(self.config.grace_seconds)
        log.info("stopped")

    async def run(self, ready: bool = True, startup: Callable[[], Awaitable[None]] | None = None) -> None:
        """Serve until SIGTERM/SIGINT. `startup` runs after the port is open (health says NOT_SERVING until
        `ready` or until the startup coroutine marks the server serving itself)."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        await self.start()
        await self.set_serving(ready, "ready" if ready else "starting")
        startup_task = asyncio.create_task(startup()) if startup else None
        await self._stopping.wait()
        if startup_task and not startup_task.done():
            startup_task.cancel()
        await self.stop()


def run_service(config: ServiceConfig | type[ServiceConfig], make_server: Callable[[ServiceConfig], Awaitable[None]],
                description: str = "") -> None:
    """Entry point for `python -m services.X`. Given the config class, `--help` lists its environment variables
    and the configuration is read from the environment; then logging, then the service's async main."""
    if isinstance(config, type):
        if {"-h", "--help"} & set(sys.argv[1:]):
            print(f"{description}\n\nEnvironment variables (default, meaning):\n{config.describe()}")
            return
        config = config.from_env()
    setup_logging(config.log_level)
    asyncio.run(make_server(config))

"""Real servers on loopback for the tests: each service and the gateway run as subprocesses on free ports.

    with start_service("services.baseline", {"CORPUS": path}, "BASELINE_PORT") as baseline:
        with start_gateway({"BASELINE_ADDR": baseline.address}) as gateway:
            httpx.post(f"{gateway.url}/generate", json={"start_word": "the"})
"""
import contextlib
import dataclasses
import os
import pathlib
import signal
import socket
import subprocess
import sys
import tempfile
import time

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

ROOT = pathlib.Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT_SECONDS = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def base_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_PORT", "_ADDR"))}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "gen" / "python"), str(ROOT)])
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.update(extra)
    return env


@dataclasses.dataclass
class Process:
    proc: subprocess.Popen
    port: int
    log_path: pathlib.Path

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def _spawn(args: list[str], env: dict[str, str], port: int) -> Process:
    log = tempfile.NamedTemporaryFile(prefix="textgen-", suffix=".log", delete=False)
    proc = subprocess.Popen(args, cwd=ROOT, env=base_env(env), stdout=log, stderr=subprocess.STDOUT)
    return Process(proc, port, pathlib.Path(log.name))


def _wait(process: Process, ready, what: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.proc.returncode}:\n{process.logs()}")
        with contextlib.suppress(Exception):
            if ready():
                return
        time.sleep(0.1)
    process.stop()
    raise TimeoutError(f"{what} not ready after {STARTUP_TIMEOUT_SECONDS}s:\n{process.logs()}")


def health_status(address: str, service: str = "") -> int:
    with grpc.insecure_channel(address) as channel:
        response = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service),
                                                             timeout=1)
    return response.status


@contextlib.contextmanager
def start_service(module: str, env: dict[str, str], port_var: str, wait_serving: bool = True,
                  port: int | None = None):
    """`python -m module` with `env`, on `port` (default: a free one) given through `port_var`. Waits until health
    says SERVING (or, with wait_serving=False, until health answers at all); stops it with SIGTERM afterwards."""
    port = port or free_port()
    process = _spawn([sys.executable, "-m", module], {**env, port_var: str(port)}, port)
    try:
        if wait_serving:
            _wait(process, lambda: health_status(process.address) == health_pb2.HealthCheckResponse.SERVING, module)
        else:
            _wait(process, lambda: health_status(process.address) is not None, module)
        yield process
    finally:
        process.stop()


@contextlib.contextmanager
def start_gateway(env: dict[str, str]):
    """The local REST gateway on a free port, its backends given as BASELINE_ADDR, RNN_ADDR, LLM_ADDR, ..."""
    port = free_port()
    process = _spawn([sys.executable, "-m", "gateway.local"], {**env, "GATEWAY_PORT": str(port)}, port)
    try:
        _wait(process, lambda: httpx.get(f"{process.url}/healthz", timeout=1).status_code == 200, "gateway")
        yield process
    finally:
        process.stop()

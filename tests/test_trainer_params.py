"""The training parameters' ranges are defined once (training/params.py): the gRPC server, the command line and its
--help use them (tests/test_limits.py holds trainer.proto's comments to them). The runner's death is not silent."""
import json
import sqlite3
import subprocess
import sys
import time

from grpc_health.v1 import health_pb2

from devtools.processes import base_env, health_status, start_service
from services.trainer.jobs.store import JobStore
from textgen.paths import ROOT


def training_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "services.trainer.commands", *args], cwd=ROOT, env=base_env({}),
                          capture_output=True, text=True, timeout=120)


def test_the_command_line_shows_the_ranges_and_refuses_values_outside_them():
    helped = training_cli("sft", "--help")
    assert helped.returncode == 0 and "between 1 and 100000" in " ".join(helped.stdout.split())
    refused = training_cli("rl", "--steps", "0", "--learning-rate", "0.5")
    assert refused.returncode == 2
    assert "steps must be between 1 and 10000 (got 0)" in refused.stderr
    assert "learning_rate must be greater than 0 and at most 0.01 (got 0.5)" in refused.stderr
    assert "Traceback" not in refused.stderr
    weightless = training_cli("rl", "--prefix-weight", "0", "--suffix-weight", "0", "--clean-end-weight", "0",
                              "--answer-weight", "0")
    assert weightless.returncode == 2 and "RL learns nothing" in weightless.stderr, weightless.stderr


def test_a_dead_job_runner_turns_health_not_serving(tmp_path):
    store = JobStore.under(tmp_path)
    with sqlite3.connect(store.database.path) as db:  # a hand-edited row the runner cannot read
        db.execute("INSERT INTO jobs (id, kind, status, params, created_at) VALUES ('bad', 'sft', 'queued', "
                   "'{not json', 0)")
    with start_service("services.trainer", {"MODELS_DIR": str(tmp_path)}, "TRAINER_PORT",
                       wait_serving=False) as trainer:
        deadline = time.monotonic() + 20
        while health_status(trainer.address) != health_pb2.HealthCheckResponse.NOT_SERVING:
            assert time.monotonic() < deadline, "health stayed SERVING with the job runner dead"
            time.sleep(0.1)
        logs = [json.loads(line) for line in trainer.logs().splitlines() if line.startswith("{")]
    assert any(e["msg"] == "the job runner stopped; no queued job will start" and "JSONDecodeError" in e["exc"]
               for e in logs)
    assert any(e["msg"] == "readiness changed" and "the job runner stopped" in e.get("reason", "") for e in logs)

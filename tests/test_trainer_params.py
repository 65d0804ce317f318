"""The training parameters' ranges are defined once (training/params.py): the gRPC server, the command line and its
--help use them, and trainer.proto's comments, which the OpenAPI document and docs/api.md show, state the same
ranges and defaults. The runner's death is not silent."""
import dataclasses
import json
import sqlite3
import subprocess
import sys
import time

import pytest
from grpc_health.v1 import health_pb2

from devtools.processes import base_env, health_status, start_service
from gateway.http_rules import load_descriptor_set
from gateway.proto_comments import collect_comments, stated_default, stated_range
from services.common.limits import bounds, out_of_range
from services.trainer.job_store import JobStore
from services.trainer.training.params import EvalParams, RlParams, SftParams
from textgen.paths import DESCRIPTOR_SET, ROOT


@pytest.mark.parametrize("params_type, message", [(SftParams, "TrainSftRequest"), (RlParams, "TrainRlRequest")])
def test_the_proto_comments_state_the_defined_ranges_and_defaults(params_type, message):
    comments = collect_comments(load_descriptor_set(DESCRIPTOR_SET))
    for field in dataclasses.fields(params_type):
        comment = comments[f"textgen.v1.{message}.{field.name}"]
        default = stated_default(comment)
        assert (default in ("true", "false") and default == str(field.default).lower()) or \
            float(default) == field.default, (field.name, comment)
        bound = bounds(params_type).get(field.name)
        if bound is not None:
            stated = f"> {bound.low} and <= {bound.high}" if bound.low_open else f"{bound.low}..{bound.high}"
            assert stated_range(comment) == stated, (field.name, comment)


def test_out_of_range_names_each_field_and_its_range():
    assert out_of_range(SftParams()) == [] and out_of_range(EvalParams()) == []
    assert out_of_range(SftParams(max_examples=0, learning_rate=0.0)) == [
        ("max_examples", "max_examples must be between 1 and 100000 (got 0)"),
        ("learning_rate", "learning_rate must be greater than 0 and at most 0.01 (got 0.0)")]
    assert out_of_range(EvalParams(max_new_tokens=4))[0][0] == "max_new_tokens"


def training_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "services.trainer.training", *args], cwd=ROOT, env=base_env({}),
                          capture_output=True, text=True, timeout=120)


def test_the_command_line_shows_the_ranges_and_refuses_values_outside_them():
    helped = training_cli("sft", "--help")
    assert helped.returncode == 0 and "between 1 and 100000" in " ".join(helped.stdout.split())
    refused = training_cli("rl", "--steps", "0", "--learning-rate", "0.5")
    assert refused.returncode == 2
    assert "steps must be between 1 and 10000 (got 0)" in refused.stderr
    assert "learning_rate must be greater than 0 and at most 0.01 (got 0.5)" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_a_dead_job_runner_turns_health_not_serving(tmp_path):
    store = JobStore.under(tmp_path)
    with sqlite3.connect(store.path) as db:  # a hand-edited row the runner cannot read
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

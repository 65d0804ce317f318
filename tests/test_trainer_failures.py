"""A trainer, started by each test on its own (over gRPC, no gateway), when things go wrong: killed in the middle of
a job and restarted, or given a data set it cannot load."""
import os
import pathlib
import shutil
import signal
import time

import grpc
import pytest
from textgen.v1 import trainer_pb2, trainer_pb2_grpc

from devtools.models import random_models_dir, train_tiny_adapter
from devtools.processes import start_service
from services.common import adapters
from services.trainer.jobs.store import JobStore
from tests.trainer_service import JOB_TIMEOUT_SECONDS, LONG_SFT, trainer_env
from textgen.paths import SQUAD_SAMPLE


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory) -> pathlib.Path:
    """The random tiny GPT-2 with an sft adapter published on it: what a killed trainer must leave as it was."""
    models = random_models_dir(tmp_path_factory.mktemp("trainer-models"))
    train_tiny_adapter(models, "sft")
    return models


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_killed_trainer_fails_the_running_job_and_keeps_the_published_adapter(models_dir, tmp_path):
    copy = tmp_path / "models"
    shutil.copytree(models_dir, copy)
    published = adapters.current_path(copy, "sft")
    assert published is not None, "the models folder holds a published sft adapter"
    env = trainer_env(copy, SQUAD_SAMPLE)
    with start_service("services.trainer", env, "TRAINER_PORT") as trainer:
        with grpc.insecure_channel(trainer.address) as channel:
            stub = trainer_pb2_grpc.TrainerServiceStub(channel)
            job = stub.TrainSft(trainer_pb2.TrainSftRequest(**LONG_SFT))
            deadline = time.monotonic() + JOB_TIMEOUT_SECONDS
            while stub.GetJob(trainer_pb2.GetJobRequest(job_id=job.job_id)).progress.total_steps == 0:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        worker_pid = JobStore.under(copy).get(job.job_id).pid
        trainer.proc.send_signal(signal.SIGKILL)
        trainer.proc.wait()
    deadline = time.monotonic() + 10
    while _alive(worker_pid):
        assert time.monotonic() < deadline, "the training process outlived the killed trainer"
        time.sleep(0.2)
    with start_service("services.trainer", env, "TRAINER_PORT") as restarted:
        with grpc.insecure_channel(restarted.address) as channel:
            stub = trainer_pb2_grpc.TrainerServiceStub(channel)
            after = stub.GetJob(trainer_pb2.GetJobRequest(job_id=job.job_id))
            assert after.status == "failed" and "stopped while this job was running" in after.error
            assert after.adapter_version == ""
            watched = list(stub.WatchJob(trainer_pb2.WatchJobRequest(job_id=job.job_id), timeout=10))
            assert [e.status for e in watched] == ["failed"]
    assert adapters.current_path(copy, "sft") == published
    assert (published / adapters.WEIGHTS).is_file()
    assert not [p for p in adapters.adapter_dir(copy, "sft").iterdir() if p.name.startswith(".staging-")]


def test_unloadable_dataset_fails_the_job_naming_squad_dataset(models_dir, tmp_path):
    env = {**trainer_env(models_dir, tmp_path / "no-such-squad.jsonl"), "MODELS_DIR": str(tmp_path / "models")}
    with start_service("services.trainer", env, "TRAINER_PORT") as trainer:
        with grpc.insecure_channel(trainer.address) as channel:
            stub = trainer_pb2_grpc.TrainerServiceStub(channel)
            job = stub.TrainSft(trainer_pb2.TrainSftRequest())
            final = list(stub.WatchJob(trainer_pb2.WatchJobRequest(job_id=job.job_id), timeout=JOB_TIMEOUT_SECONDS))
    assert final[-1].status == "failed"
    assert "SQUAD_DATASET" in final[-1].message and "squad_sample" in final[-1].message
    assert adapters.current_version(tmp_path / "models", "sft") is None

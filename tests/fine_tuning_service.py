"""What the fine-tuning API's tests share: the llm and trainer services on the tiny random GPT-2 behind Envoy, the
official `openai` client on the gateway, chat example files, and waiting for a job to end."""
import json
import pathlib
import time

import openai
import pytest

from devtools.models import RANDOM_GPT2, random_models_dir
from devtools.processes import start_gateway, start_service
from tests.trainer_service import JOB_TIMEOUT_SECONDS, trainer_env
from textgen.paths import SQUAD_SAMPLE

ENDED = ("succeeded", "failed", "cancelled")
STATUSES = ("validating_files", "queued", "running", *ENDED)


def chat_lines(count: int, answer: str = "Blue.") -> bytes:
    """`count` chat examples as JSONL: the same short answer to different questions."""
    return "".join(json.dumps({"messages": [{"role": "user", "content": f"Question number {i}?"},
                                            {"role": "assistant", "content": answer}]}) + "\n"
                   for i in range(count)).encode()


def preference_lines(count: int) -> bytes:
    """`count` preference pairs as JSONL (OpenAI's dpo format): a short answer preferred over a long one."""
    return "".join(json.dumps({"input": {"messages": [{"role": "user", "content": f"Question number {i}?"}]},
                               "preferred_output": [{"role": "assistant", "content": "Blue."}],
                               "non_preferred_output": [{"role": "assistant", "content": "Well, it is blue."}]})
                   + "\n" for i in range(count)).encode()


def prompt_lines(count: int) -> bytes:
    """`count` prompts as JSONL (OpenAI's reinforcement format), each with the reference field `answer`."""
    return "".join(json.dumps({"messages": [{"role": "user", "content": f"Question number {i}?"}],
                               "answer": f"{i}"}) + "\n" for i in range(count)).encode()


def wait_for_end(client: openai.OpenAI, job_id: str, seen: list[str] | None = None):
    deadline = time.monotonic() + JOB_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        job = client.fine_tuning.jobs.retrieve(job_id)
        if seen is not None and (not seen or seen[-1] != job.status):
            seen.append(job.status)
        if job.status in ENDED:
            return job
        time.sleep(0.2)
    raise AssertionError(f"fine-tuning job {job_id} never ended: {job}")


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory) -> pathlib.Path:
    return random_models_dir(tmp_path_factory.mktemp("fine-tuning-models"))


@pytest.fixture(scope="module")
def llm(models_dir):
    env = {"MODELS_DIR": str(models_dir), "LLM_BASE_MODEL": str(models_dir / RANDOM_GPT2), "LLM_TORCH_THREADS": "1"}
    with start_service("services.llm", env, "LLM_PORT") as service:
        yield service


@pytest.fixture(scope="module")
def trainer(models_dir, llm):
    env = {**trainer_env(models_dir, SQUAD_SAMPLE, llm.address), "TRAINER_MAX_QUEUED": "4"}
    with start_service("services.trainer", env, "TRAINER_PORT") as service:
        yield service


@pytest.fixture(scope="module")
def gateway(trainer, llm):
    with start_gateway(trainer=trainer.address, llm=llm.address, max_upload_bytes=256 * 1024) as process:
        yield process


@pytest.fixture(scope="module")
def client(gateway):
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="unused", max_retries=0, timeout=60) as made:
        yield made

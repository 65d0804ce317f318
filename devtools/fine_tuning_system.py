"""What the fine-tuning benchmarks share: the embedded model (SmolLM2-135M-Instruct) served by the llm service and
trained by the trainer, both behind the real gateway, with the official `openai` client on it; the CPU named with the
flags every figure is given beside; a held-out set's greedy replies; a job run to its end."""
import concurrent.futures
import contextlib
import pathlib
import tempfile
import time

import openai

from devtools.processes import start_gateway, start_service
from services.common import embedded_model
from services.common.base_model import EMBEDDED
from textgen.paths import ROOT, SQUAD_TRAIN_SLICE

FLAGS = ("avx512_bf16", "amx_bf16", "avx512_vnni")


def cpu() -> str:
    info = pathlib.Path("/proc/cpuinfo").read_text()
    name = next(line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name"))
    flags = set(next(line for line in info.splitlines() if line.startswith("flags")).split())
    return f"{name}; " + ", ".join(f"{flag} {'yes' if flag in flags else 'no'}" for flag in FLAGS)


@contextlib.contextmanager
def embedded_system():
    """(client, gateway, trainer) on a scratch models folder holding the embedded model."""
    with tempfile.TemporaryDirectory(prefix="bench-fine-tune-") as tmp:
        models = pathlib.Path(tmp) / "models"
        models.mkdir()
        embedded_model.folder(models).symlink_to(embedded_model.ensure(ROOT / "models"))
        env = {"MODELS_DIR": str(models), "LLM_BASE_MODEL": EMBEDDED, "SQUAD_DATASET": str(SQUAD_TRAIN_SLICE)}
        with start_service("services.llm", env, "LLM_PORT") as llm, \
                start_service("services.trainer", {**env, "LLM_ADDR": llm.address}, "TRAINER_PORT") as trainer, \
                start_gateway(trainer=trainer.address, llm=llm.address) as gateway, \
                openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="unused", max_retries=0, timeout=600) as client:
            yield client, gateway, trainer, pathlib.Path(tmp)


def greedy_replies(client: openai.OpenAI, model: str, conversations: list[list[dict]], max_tokens: int) -> list[str]:
    def reply(messages) -> str:
        answer = client.chat.completions.create(model=model, messages=messages, temperature=0, max_tokens=max_tokens)
        return answer.choices[0].message.content

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        return list(pool.map(reply, conversations))


def run_job(client: openai.OpenAI, **fields):
    """(the job once it ended, seconds from its creation to then as a client polling every 0.2 s sees it)."""
    started = time.monotonic()
    job = client.fine_tuning.jobs.create(**fields)
    while job.status not in ("succeeded", "failed", "cancelled"):
        time.sleep(0.2)
        job = client.fine_tuning.jobs.retrieve(job.id)
    return job, time.monotonic() - started


def metrics(client: openai.OpenAI, job_id: str) -> list[dict]:
    """The job's metrics events' data, oldest first."""
    events = client.fine_tuning.jobs.list_events(job_id, limit=1000).data
    return [event.data for event in reversed(events) if event.type == "metrics"]

"""What the trainer's end-to-end tests (test_trainer.py, test_trainer_failures.py) share: the environment a test trainer runs with, and the jobs they start."""
import pathlib

from devtools.models import RANDOM_GPT2
from devtools.processes import free_port

# An SFT job far longer than any test waits for: to be queued behind, cancelled or killed while it trains.
LONG_SFT = {"max_examples": 100000, "num_train_epochs": 20, "max_length": 96}
JOB_TIMEOUT_SECONDS = 120


def trainer_env(models_dir: pathlib.Path, dataset: pathlib.Path, llm_addr: str | None = None) -> dict[str, str]:
    return {"MODELS_DIR": str(models_dir), "LLM_BASE_MODEL": str(models_dir / RANDOM_GPT2),
            "SQUAD_DATASET": str(dataset), "TRAINER_MAX_QUEUED": "1",
            "TRAINER_EVAL_EXAMPLES": "4", "TRAINER_EVAL_MAX_NEW_TOKENS": "12", "TRAINER_TORCH_THREADS": "1",
            # Without an llm service nothing listens there: telling it to reload is best effort, never fatal.
            "LLM_ADDR": llm_addr or f"127.0.0.1:{free_port()}"}

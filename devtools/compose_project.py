"""The Docker Compose project `make compose-check` brings up (devtools/compose_check.py): the Compose command this
machine has, what the check changes in docker-compose.yml, and its containers as Docker reports them."""
import json
import pathlib
import shutil
import subprocess

from devtools.images import docker
from devtools.models import RANDOM_GPT2
from textgen.paths import ROOT, SHIPPED_CORPUS

PROJECT = "textgen-check"
SERVICE_UID = "10001"


class CheckFailed(AssertionError):
    pass


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise CheckFailed(what)


def compose_command() -> list[str] | None:
    """Compose v2 (`docker compose`) or v1 (`docker-compose`), whichever this machine has."""
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    return ["docker-compose"] if shutil.which("docker-compose") else None


def stand_in_override(models: pathlib.Path) -> dict:
    """What the check changes in docker-compose.yml: the stand-in models and the shipped corpus and SQuAD sample
    (the images hold them), small evaluations, one queued job at most."""
    corpus = {"CORPUS": f"/app/data/corpus/{SHIPPED_CORPUS.name}", "CORPUS_CHAPTERS": ""}
    base_model = {"LLM_BASE_MODEL": f"/app/models/{RANDOM_GPT2}"}
    return {"services": {
        "baseline": {"environment": corpus}, "rnn-model": {"environment": corpus}, "rnn": {"environment": corpus},
        "llm": {"environment": base_model},
        "trainer": {"environment": {**base_model, "SQUAD_DATASET": "/app/data/squad_sample", "TRAINER_MAX_QUEUED": "1",
                                    "TRAINER_TORCH_THREADS": "1", "TRAINER_EVAL_EXAMPLES": "4",
                                    "TRAINER_EVAL_MAX_NEW_TOKENS": "12"}}}}


class Compose:
    def __init__(self, command: list[str], override: pathlib.Path, environ: dict[str, str], project: str = PROJECT,
                 also: tuple[str, ...] = ()):
        """`also`: more of the repository's compose files, after docker-compose.yml (docker-compose.tls.yml)."""
        self.base = [*command, "--project-name", project, "--file", str(ROOT / "docker-compose.yml"),
                     *(arg for name in also for arg in ("--file", str(ROOT / name))), "--file", str(override)]
        self.environ = environ

    def __call__(self, *args: str, timeout: float = 600) -> str:
        result = subprocess.run([*self.base, *args], cwd=ROOT, env=self.environ, capture_output=True, text=True,
                                timeout=timeout)
        if result.returncode != 0:
            raise CheckFailed(f"compose {' '.join(args)} failed:\n{result.stderr[-3000:]}")
        return result.stdout

    def containers(self, service: str) -> list[str]:
        return self("ps", "--quiet", service).split()


def inspect(container: str) -> dict:
    return json.loads(docker("inspect", container, capture_output=True, check=True).stdout)[0]




def healthy(container: str) -> bool:
    return inspect(container)["State"].get("Health", {}).get("Status") == "healthy"

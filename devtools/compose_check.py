"""The whole system under Docker Compose, for real (`make compose-check`, after `make images`):

  1. up: docker-compose.yml (cpu profile) from the textgen-* images, with the small stand-in models in a models
     folder (a random tiny GPT-2 and a 2-epoch LSTM, devtools.processes.stand_in_models) and a fresh trainer token;
  2. hardened: every container runs as uid 10001 on a read-only root file system, and no image's history or
     configuration holds a token;
  3. the REST suite (suites/fuzz_rest.py --quick) through the containerised Envoy on GATEWAY_PORT;
  4. llm scaled to 2; a tiny SFT job through REST; the adapter it publishes served by both replicas, each asked
     directly inside its container;
  5. one llm container killed under load through Envoy: no request may fail;
  6. down, volumes and all.

    python -m devtools.compose_check              # prints each step's figures; exit 1 if an expectation fails

Needs a running Docker engine and Compose (v2's `docker compose` or v1's `docker-compose`), and says so.
"""
import json
import os
import pathlib
import secrets
import shutil
import subprocess
import sys
import tempfile
import time

import httpx
import yaml

from devtools.images import TARGETS, ImageError, docker, image_name, require_engine
from devtools.load import requests_around
from devtools.models import FACT_QUESTION, RANDOM_GPT2, TINY_SFT
from devtools.processes import poll, stand_in_models
from textgen.endpoints import ENDPOINTS, GATEWAY_PORT
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
    def __init__(self, command: list[str], override: pathlib.Path, environ: dict[str, str]):
        self.base = [*command, "--project-name", PROJECT, "--file", str(ROOT / "docker-compose.yml"),
                     "--file", str(override)]
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


def wait_ready(api: httpx.Client, seconds: float) -> None:
    """Every service answering through Envoy."""
    calls = [("POST", "/generate", {"start_word": "the", "length": 3}),
             ("POST", "/generate_with_rnn", {"start_word": "the", "length": 3}),
             ("POST", "/generate_with_llm", FACT_QUESTION), ("GET", "/llm/jobs", None)]

    def answered() -> bool:
        try:
            return all(api.request(method, path, json=body).status_code == 200 for method, path, body in calls)
        except httpx.HTTPError:
            return False
    expect(poll(answered, seconds, interval=2), f"the system did not answer through Envoy within {seconds:.0f} s")


def check_pages(api: httpx.Client) -> str:
    """What the Envoy image serves by itself: the OpenAPI document, Swagger UI and the playground."""
    served = []
    for path, content_type in (("/openapi.json", "application/json"), ("/docs", "text/html"),
                               ("/playground", "text/html")):
        response = api.get(path)
        expect(response.status_code == 200 and response.headers["content-type"].startswith(content_type),
               f"GET {path}: {response.status_code} {response.headers.get('content-type')}")
        served.append(f"{path} ({len(response.content)} bytes)")
    return ", ".join(served)


def check_hardening(compose: Compose, token: str) -> str:
    checked = []
    for service in [*ENDPOINTS, "envoy"]:
        for container in compose.containers(service):
            details = inspect(container)
            expect(details["HostConfig"]["ReadonlyRootfs"], f"{service}: root file system not read-only")
            uid = docker("exec", container, "id", "-u", capture_output=True, check=True).stdout.strip()
            expect(uid == SERVICE_UID, f"{service} runs as uid {uid}, not {SERVICE_UID}")
            # As root, so that only the read-only mount can refuse it (uid 10001 is refused by permissions anyway).
            write = docker("exec", "--user", "0", container, "touch", "/written", capture_output=True)
            expect(write.returncode != 0 and "Read-only file system" in write.stderr,
                   f"{service}: root could write its root file system ({write.stderr.strip()})")
            checked.append(service)
    for target in TARGETS:
        history = docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", image_name(target),
                         capture_output=True, check=True).stdout
        environment = inspect(image_name(target))["Config"]["Env"] or []
        for text in [history, *environment]:
            expect(token not in text, f"{image_name(target)} holds the trainer token")
            expect("TRAINER_TOKEN=" not in text, f"{image_name(target)} sets TRAINER_TOKEN in a layer")
    return f"{len(checked)} containers as uid {SERVICE_UID} on read-only root file systems; no token in " \
           f"{len(TARGETS)} images' history or configuration"


def rest_suite(url: str, token: str) -> str:
    result = subprocess.run([sys.executable, str(ROOT / "suites" / "fuzz_rest.py"), "--quick", "--url", url,
                             "--token", token], cwd=ROOT, capture_output=True, text=True, timeout=1800)
    summary = [line for line in result.stdout.splitlines() if line.startswith(("cases:", "4xx/5xx", "too few"))]
    expect(result.returncode == 0, "the REST suite failed:\n" + result.stdout[-3000:] + result.stderr[-2000:])
    return "; ".join(summary)


def cancel_open_jobs(api: httpx.Client, auth: dict) -> None:
    """The REST suite starts real training jobs; the check's own job must not queue behind them."""
    for job in api.get("/llm/jobs").json().get("jobs", []):
        if job["status"] in ("queued", "running"):
            api.post(f"/llm/jobs/{job['job_id']}:cancel", json={}, headers=auth)
    expect(poll(lambda: all(job["status"] not in ("queued", "running")
                            for job in api.get("/llm/jobs").json().get("jobs", [])), 120, interval=1),
           "the REST suite's jobs did not stop within 120 s of being cancelled")


def healthy(container: str) -> bool:
    return inspect(container)["State"].get("Health", {}).get("Status") == "healthy"


def replica_adapter_version(container: str) -> str:
    """The sft version one llm replica serves, asked over gRPC inside its own container."""
    script = ("import grpc; from textgen.v1 import llm_pb2, llm_pb2_grpc; "
              f"channel = grpc.insecure_channel('localhost:{ENDPOINTS['llm'].port}'); "
              "print(llm_pb2_grpc.LlmServiceStub(channel).Generate(llm_pb2.LlmGenerateRequest("
              "question='Where is it?', adapter='sft', max_new_tokens=2), timeout=60).adapter_version)")
    result = docker("exec", container, "python", "-c", script, capture_output=True)
    return result.stdout.strip() if result.returncode == 0 else f"error: {result.stderr.strip()[-300:]}"


def train_and_check_replicas(compose: Compose, api: httpx.Client, auth: dict) -> str:
    compose("up", "--detach", "--no-recreate", "--scale", "llm=2")
    replicas = compose.containers("llm")
    expect(len(replicas) == 2, f"llm scaled to 2 gives {len(replicas)} containers")
    expect(poll(lambda: all(healthy(c) for c in replicas), 180, interval=2), "the second llm replica never got healthy")
    started = time.monotonic()
    job = api.post("/llm/train_sft", json=TINY_SFT, headers=auth)
    expect(job.status_code == 200, f"train_sft: {job.status_code} {job.text}")
    job_id = job.json()["job_id"]
    expect(poll(lambda: api.get(f"/llm/jobs/{job_id}").json()["status"] in ("succeeded", "failed", "cancelled"),
                600, interval=2), "the SFT job did not finish within 600 s")
    done = api.get(f"/llm/jobs/{job_id}").json()
    expect(done["status"] == "succeeded", f"the SFT job ended {done['status']}: {done.get('error')}")
    version = done["adapter_version"]
    trained = time.monotonic() - started
    expect(poll(lambda: all(replica_adapter_version(c) == version for c in replicas), 60, interval=2),
           f"not every replica serves sft {version}: {[replica_adapter_version(c) for c in replicas]}")
    return f"SFT job {job_id} succeeded in {trained:.0f} s; both llm replicas serve sft version {version}"


def kill_one_under_load(compose: Compose, api: httpx.Client) -> str:
    replicas = compose.containers("llm")
    outcomes = requests_around(api, "/generate_with_llm", FACT_QUESTION, before_s=5, after_s=15,
                               event=lambda: docker("kill", replicas[0], capture_output=True, check=True))
    failed = outcomes.failures
    expect(outcomes.before_event > 0, "no request was answered before the kill")
    expect(not failed, f"{len(failed)} of {len(outcomes.answered)} requests failed around the kill: {failed[:10]}")
    return f"{len(outcomes.answered)} requests by 4 clients, {len(outcomes.answered) - outcomes.before_event} after " \
           f"one of 2 llm replicas was killed: 0 failed"


def say(line: str) -> None:
    print(line, flush=True)


def run(port: int) -> None:
    command = compose_command()
    if command is None:
        raise ImageError("no Docker Compose here: install Compose v2 (docker compose) or v1 (Debian: apt-get "
                         "install docker-compose)")
    missing = [image_name(t) for t in TARGETS if docker("image", "inspect", image_name(t), capture_output=True).returncode]
    if missing:
        raise ImageError(f"no image {', '.join(missing)}: run make images first")
    token = secrets.token_hex(16)
    url, auth = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {token}"}
    with tempfile.TemporaryDirectory(prefix="textgen-compose-") as tmp:
        models = stand_in_models(pathlib.Path(tmp) / "models")
        subprocess.run(["chown", "-R", f"{SERVICE_UID}:{SERVICE_UID}", str(models)], check=True)
        override = pathlib.Path(tmp) / "check.yml"
        override.write_text(yaml.safe_dump(stand_in_override(models)))
        environ = {**os.environ, "TRAINER_TOKEN": token, "MODELS_VOLUME": str(models), "GATEWAY_PORT": str(port),
                   "COMPOSE_PROFILES": "cpu"}
        compose = Compose(command, override, environ)
        started = time.monotonic()
        try:
            compose("up", "--detach")
            with httpx.Client(base_url=url, timeout=60) as api:
                wait_ready(api, 300)
                say(f"up: every service answering through Envoy on :{port} after {time.monotonic() - started:.0f} s")
                say("pages: " + check_pages(api))
                say("hardened: " + check_hardening(compose, token))
                suite_started = time.monotonic()
                suite = rest_suite(url, token)
                say(f"REST suite through Envoy ({time.monotonic() - suite_started:.0f} s): {suite}")
                cancel_open_jobs(api, auth)
                say("replicas: " + train_and_check_replicas(compose, api, auth))
                say("kill: " + kill_one_under_load(compose, api))
        finally:
            logs = subprocess.run([*compose.base, "logs", "--no-color", "--tail", "40"], cwd=ROOT, env=environ,
                                  capture_output=True, text=True).stdout if sys.exc_info()[0] else ""
            subprocess.run([*compose.base, "down", "--volumes", "--remove-orphans", "--timeout", "10"], cwd=ROOT,
                           env=environ, capture_output=True, timeout=300)
            if logs:
                print(logs[-6000:], file=sys.stderr)
        say(f"down: all in {time.monotonic() - started:.0f} s")


def main() -> int:
    port = int(os.environ.get("GATEWAY_PORT", GATEWAY_PORT))
    try:
        require_engine()
        run(port)
    except ImageError as error:
        print(f"make compose-check: {error}", file=sys.stderr)
        return 2
    except CheckFailed as failure:
        print(f"compose-check FAILED: {failure}", file=sys.stderr)
        return 1
    print("compose-check: passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())

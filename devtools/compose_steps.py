"""What `make compose-check` checks in the running system, one function a step (devtools/compose_check.py runs
them in order); each returns the figures it prints, or raises CheckFailed saying what failed."""
import json
import os
import pathlib
import shutil
import ssl
import subprocess
import sys
import time

import httpx
import openai

from devtools.compose_project import SERVICE_UID, Compose, expect, healthy, inspect
from devtools.images import TARGETS, docker, image_name
from devtools.load import requests_around
from devtools.models import FACT_QUESTION, TINY_SFT
from devtools.processes import poll
from services.common import adapters
from textgen.endpoints import ENDPOINTS
from textgen.paths import ROOT

ENDED = ("succeeded", "failed", "cancelled")


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


def check_pages(anonymous: httpx.Client) -> str:
    """What the Envoy image serves by itself, to anyone: the OpenAPI document, Swagger UI and the playground; all
    else needs the key."""
    api, served = anonymous, []
    for path, content_type in (("/openapi.json", "application/json"), ("/docs", "text/html"),
                               ("/playground", "text/html")):
        response = api.get(path)
        expect(response.status_code == 200 and response.headers["content-type"].startswith(content_type),
               f"GET {path}: {response.status_code} {response.headers.get('content-type')}")
        served.append(f"{path} ({len(response.content)} bytes)")
    refused = api.post("/generate", json={"start_word": "the"})
    expect(refused.status_code == 401 and refused.json()["code"] == 16, f"POST /generate without a key: "
                                                                        f"{refused.status_code} {refused.text[:200]}")
    return ", ".join(served) + " without a key; POST /generate without one: 401"


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
            expect(token not in text, f"{image_name(target)} holds the API key")
    return f"{len(checked)} containers as uid {SERVICE_UID} on read-only root file systems; no key in " \
           f"{len(TARGETS)} images' history or configuration"


def rest_suite(url: str, token: str, ca: pathlib.Path) -> str:
    """suites/fuzz_rest.py with the API key, over HTTPS trusting `ca` (requests and Python's ssl read it from the
    environment)."""
    environ = {**os.environ, "REQUESTS_CA_BUNDLE": str(ca), "SSL_CERT_FILE": str(ca)}
    result = subprocess.run([sys.executable, str(ROOT / "suites" / "fuzz_rest.py"), "--quick", "--url", url,
                             "--token", token], cwd=ROOT, capture_output=True, text=True, timeout=1800, env=environ)
    summary = [line for line in result.stdout.splitlines() if line.startswith(("cases:", "4xx/5xx", "too few"))]
    expect(result.returncode == 0, "the REST suite failed:\n" + result.stdout[-3000:] + result.stderr[-2000:])
    return "; ".join(summary)


def check_openai(url: str, token: str, trusted: ssl.SSLContext) -> str:
    """The `openai` client with the key as its api_key, over HTTPS trusting only the run's CA."""
    with httpx.Client(verify=trusted) as http, openai.OpenAI(base_url=f"{url}/v1", api_key=token, http_client=http,
                                                             max_retries=0, timeout=120) as client:
        models = [m.id for m in client.models.list()]
        answer = client.chat.completions.create(model="base", max_tokens=4, temperature=0,
                                                messages=[{"role": "user", "content": "Where is the ship?"}])
        # A stored response: the SQLite file on the models volume, written by the llm's uid on a read-only root.
        first = client.responses.create(model="base", input="Where is the ship?", max_output_tokens=4)
        then = client.responses.create(model="base", input="And then?", max_output_tokens=4,
                                       previous_response_id=first.id)
        stored = client.responses.retrieve(then.id)
    expect(bool(models) and answer.choices[0].message.content is not None, f"openai client: {models} {answer}")
    expect(stored.previous_response_id == first.id and stored.output_text == then.output_text,
           f"openai client: stored response {stored}")
    return (f"{len(models)} models listed, a chat completion answered, and a response stored, continued and "
            "retrieved, over https with api_key")


def fine_tune(url: str, token: str, trusted: ssl.SSLContext) -> str:
    """OpenAI's fine-tuning flow with the `openai` client: a file of chat examples uploaded, a job on it followed to
    its end, its fine_tuned_model asked, then the file and the model deleted."""
    lines = "".join(json.dumps({"messages": [{"role": "user", "content": f"Question {i}?"},
                                             {"role": "assistant", "content": "Blue."}]}) + "\n" for i in range(12))
    with httpx.Client(verify=trusted) as http, openai.OpenAI(base_url=f"{url}/v1", api_key=token, http_client=http,
                                                             max_retries=0, timeout=120) as client:
        uploaded = client.files.create(file=("check.jsonl", lines.encode()), purpose="fine-tune")
        job = client.fine_tuning.jobs.create(model="base", training_file=uploaded.id, suffix="compose", method={
            "type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 1, "batch_size": 4}}})
        started = time.monotonic()
        expect(poll(lambda: client.fine_tuning.jobs.retrieve(job.id).status in ENDED, 300, interval=1),
               f"fine-tuning job {job.id} did not end within 300 s")
        job = client.fine_tuning.jobs.retrieve(job.id)
        expect(job.status == "succeeded", f"fine-tuning job {job.id} {job.status}: {job.error}")
        answer = client.chat.completions.create(model=job.fine_tuned_model, max_tokens=4, temperature=0,
                                                messages=[{"role": "user", "content": "Question 3?"}])
        expect(answer.model == job.fine_tuned_model, f"the fine-tuned model did not answer: {answer}")
        expect(client.files.delete(uploaded.id).deleted and client.models.delete(job.fine_tuned_model).deleted,
               "the file or the model was not deleted")
    return f"{job.fine_tuned_model} trained in {time.monotonic() - started:.0f} s, answered, then deleted"


def cancel_open_jobs(api: httpx.Client, auth: dict) -> None:
    """The REST suite starts real training jobs; the check's own job must not queue behind them."""
    for job in api.get("/llm/jobs").json().get("jobs", []):
        if job["status"] not in ENDED:
            api.post(f"/llm/jobs/{job['job_id']}:cancel", json={}, headers=auth)
    expect(poll(lambda: all(job["status"] in ENDED for job in api.get("/llm/jobs").json().get("jobs", [])),
                120, interval=1), "the REST suite's jobs did not stop within 120 s of being cancelled")


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


def publish_and_switch(compose: Compose, api: httpx.Client, auth: dict, models: pathlib.Path) -> str:
    """A newer sft version published into the models volume with no replica told (as a publish whose ReloadAdapters
    got lost), then the job's version served again through REST (the trainer tells one replica): each replica's
    very next request serves the new current version, so the bound is one request, not a wait."""
    replicas, first = compose.containers("llm"), adapters.current_version(models, "sft")
    staged = adapters.staging_dir(models, "sft")
    shutil.copytree(adapters.current_path(models, "sft"), staged, dirs_exist_ok=True)
    subprocess.run(["chown", "-R", f"{SERVICE_UID}:{SERVICE_UID}", str(staged)], check=True)
    second = adapters.publish(models, "sft", staged)
    served = [replica_adapter_version(c) for c in replicas]
    expect(served == [second] * len(replicas), f"sft {second} published; the replicas' next requests got {served}")
    switched = api.post("/llm/adapters/sft:serve", json={"version": first}, headers=auth)
    expect(switched.status_code == 200, f"serve sft {first}: {switched.status_code} {switched.text}")
    served = [replica_adapter_version(c) for c in replicas]
    expect(served == [first] * len(replicas), f"sft {first} served again; the replicas' next requests got {served}")
    return f"sft {second} published with no replica told, then {first} served again through REST: the next " \
           f"request of each of {len(replicas)} llm replicas served the new current version both times"


def kill_one_under_load(compose: Compose, api: httpx.Client) -> str:
    replicas = compose.containers("llm")
    outcomes = requests_around(api, "/generate_with_llm", FACT_QUESTION, before_s=5, after_s=15,
                               event=lambda: docker("kill", replicas[0], capture_output=True, check=True))
    failed = outcomes.failures
    expect(outcomes.before_event > 0, "no request was answered before the kill")
    expect(not failed, f"{len(failed)} of {len(outcomes.answered)} requests failed around the kill: {failed[:10]}")
    return f"{len(outcomes.answered)} requests by 4 clients, {len(outcomes.answered) - outcomes.before_event} after " \
           f"one of 2 llm replicas was killed: 0 failed"

"""Managing the published adapters through Envoy (AdapterService, served by the trainer): list them with their
versions, switch the serving version back and forth with the llm service following, delete a version or a whole
adapter; what would break something is a 409 that says what to do, and publishing keeps
TRAINER_KEEP_VERSIONS versions."""
import subprocess
import sys
import time

import httpx
import pytest

from devtools.models import FACTS, RANDOM_GPT2, random_models_dir, train_tiny_adapter
from devtools.processes import base_env, start_gateway, start_service
from services.common import adapters
from tests.trainer_service import LONG_SFT, trainer_env
from textgen.paths import ROOT, SQUAD_SAMPLE

QUESTION, CONTEXT, _ = FACTS[0]


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """alpha: an old version answering "Alpha" and the current one answering "Bravo"; beta: one version."""
    directory = random_models_dir(tmp_path_factory.mktemp("adapter-admin"))
    old = train_tiny_adapter(directory, "alpha", steps=60, answer="Alpha")
    time.sleep(0.01)  # versions are timestamps
    new = train_tiny_adapter(directory, "alpha", steps=60, seed=1, answer="Bravo")
    train_tiny_adapter(directory, "beta", steps=10)
    return directory, old, new


@pytest.fixture(scope="module")
def running(published):
    """The llm service and the trainer on `published`'s folder, and Envoy in front."""
    directory = published[0]
    llm_env = {"MODELS_DIR": str(directory), "LLM_BASE_MODEL": str(directory / RANDOM_GPT2), "LLM_TORCH_THREADS": "1"}
    with start_service("services.llm", llm_env, "LLM_PORT") as llm, \
            start_service("services.trainer", trainer_env(directory, SQUAD_SAMPLE, llm.address),
                          "TRAINER_PORT") as trainer, \
            start_gateway(llm=llm.address, trainer=trainer.address) as gateway:
        yield llm, trainer, gateway


@pytest.fixture(scope="module")
def api(running):
    with httpx.Client(base_url=running[2].url, timeout=60) as client:
        yield client


def answer(api, adapter: str) -> httpx.Response:
    return api.post("/generate_with_llm", json={"question": QUESTION, "context": CONTEXT, "adapter": adapter,
                                                "max_new_tokens": 16})


def test_adapters_are_listed_with_their_versions_newest_first(api, published):
    _, old, new = published
    listed = {a["name"]: a for a in api.get("/llm/adapters").json()["adapters"]}
    assert set(listed) == {"alpha", "beta"}
    alpha = api.get("/llm/adapters/alpha").json()
    assert alpha == listed["alpha"] and alpha["serving_version"] == new
    assert [(v["version"], v["serving"]) for v in alpha["versions"]] == [(new, True), (old, False)]
    assert alpha["versions"][0]["base_model"].endswith(RANDOM_GPT2) and alpha["versions"][0]["published_at"]
    assert api.get("/llm/adapters/nobody").status_code == 404


def test_switching_the_version_rolls_back_and_forward_and_the_llm_follows(api, published):
    _, old, new = published
    assert "Bravo" in answer(api, "alpha").json()["generated_text"]
    switched = api.post("/llm/adapters/alpha:serve", json={"version": old})
    assert switched.status_code == 200 and switched.json()["serving_version"] == old
    back = answer(api, "alpha").json()
    assert back["adapter_version"] == old and "Alpha" in back["generated_text"], back
    missing = api.post("/llm/adapters/alpha:serve", json={"version": "20000101T000000000000Z"})
    assert missing.status_code == 404 and "has no version" in missing.json()["message"]
    assert api.post("/llm/adapters/alpha:serve", json={"version": new}).status_code == 200
    assert answer(api, "alpha").json()["adapter_version"] == new


def test_the_serving_version_cannot_be_deleted_another_can(api, published):
    _, old, new = published
    refused = api.delete(f"/llm/adapters/alpha/versions/{new}")
    assert refused.status_code == 409 and ":serve" in refused.json()["message"]
    deleted = api.delete(f"/llm/adapters/alpha/versions/{old}")
    assert deleted.status_code == 200 and [v["version"] for v in deleted.json()["versions"]] == [new]
    assert answer(api, "alpha").status_code == 200


def test_an_adapter_being_trained_into_cannot_be_deleted(api):
    job = api.post("/llm/train_sft", json={**LONG_SFT, "adapter": "alpha"}).json()
    try:
        refused = api.delete("/llm/adapters/alpha")
        assert refused.status_code == 409 and job["job_id"] in refused.json()["message"]
    finally:
        api.post(f"/llm/jobs/{job['job_id']}:cancel", json={})


def test_the_textgen_command_lists_shows_switches_and_deletes(api, running, published):
    _, old, new = published
    env = base_env({"TRAINER_ADDR": running[1].address, "LLM_ADDR": running[0].address})

    def textgen(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "textgen.client.cli", "adapters", *args], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=60)

    assert "alpha" in textgen().stdout and "beta" in textgen("list").stdout
    shown = textgen("show", "alpha")
    assert shown.returncode == 0 and new in shown.stdout and "yes" in shown.stdout
    refused = textgen("delete", "alpha", new)
    assert refused.returncode == 1 and "serve another first" in refused.stderr


def test_a_deleted_adapter_is_no_longer_served(api, published):
    assert answer(api, "beta").status_code == 200
    deleted = api.delete("/llm/adapters/beta")
    assert deleted.status_code == 200 and len(deleted.json()["deleted_versions"]) == 1
    assert not adapters.adapter_dir(published[0], "beta").exists()
    assert answer(api, "beta").status_code == 404
    assert "beta" not in {model["id"] for model in api.get("/v1/models").json()["data"]}


def test_publishing_keeps_the_newest_versions_and_never_the_serving_one(tmp_path):
    for _ in range(4):
        staged = adapters.staging_dir(tmp_path, "gamma")
        (staged / adapters.WEIGHTS).write_bytes(b"")
        adapters.publish(tmp_path, "gamma", staged)
        time.sleep(0.01)
    newest_first = adapters.versions(tmp_path, "gamma")
    adapters.point_current(tmp_path, "gamma", newest_first[-1])  # rolled back to the oldest
    assert adapters.prune(tmp_path, "gamma", keep=2) == [newest_first[2]]
    assert adapters.versions(tmp_path, "gamma") == [newest_first[0], newest_first[1], newest_first[3]]

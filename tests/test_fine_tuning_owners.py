"""Who sees what, with API keys on: a file, a fine-tuning job and the model it made belong to the key that created
them. Another key gets 404 for each and does not see them listed, on OpenAI's paths and the native ones alike, and
cannot chat with the model, train it further or delete it; a stored response is its maker's alike. (Which scope each
route takes: test_api_keys.py.)"""
import json

import httpx
import openai
import pytest

from devtools.models import RANDOM_GPT2, random_models_dir
from devtools.processes import start_gateway, start_service
from gateway import edge
from tests.fine_tuning_service import chat_lines, wait_for_end
from tests.trainer_service import trainer_env
from textgen.paths import SQUAD_SAMPLE

KEYS = [{"name": "alice", "key": "alice-key-0123456789", "scopes": ["train", "generate"]},
        {"name": "bob", "key": "bob-key-0123456789ab", "scopes": ["train", "generate"]}]
ONE_EPOCH = {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 1, "batch_size": 4}}}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    models_dir = random_models_dir(tmp_path_factory.mktemp("owners"))
    keys_file = tmp_path_factory.mktemp("keys") / "keys.json"
    keys_file.write_text(json.dumps(KEYS))
    llm_env = {"MODELS_DIR": str(models_dir), "LLM_BASE_MODEL": str(models_dir / RANDOM_GPT2)}
    with start_service("services.llm", llm_env, "LLM_PORT") as llm, \
            start_service("services.trainer", trainer_env(models_dir, SQUAD_SAMPLE, llm.address),
                          "TRAINER_PORT") as trainer, \
            start_gateway(api_keys=edge.load_keys(keys_file), trainer=trainer.address, llm=llm.address) as process:
        yield process


def client_of(gateway, name: str) -> openai.OpenAI:
    key = next(k["key"] for k in KEYS if k["name"] == name)
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0, timeout=60)


@pytest.fixture(scope="module")
def alices(gateway):
    """Alice's file, and the job that trained her model on it."""
    alice = client_of(gateway, "alice")
    uploaded = alice.files.create(file=("mine.jsonl", chat_lines(12)), purpose="fine-tune")
    job = wait_for_end(alice, alice.fine_tuning.jobs.create(model="base", training_file=uploaded.id,
                                                            suffix="alice", method=ONE_EPOCH).id)
    assert job.status == "succeeded"
    return uploaded, job


def native(gateway, name: str, method: str, path: str, **body) -> httpx.Response:
    key = next(k["key"] for k in KEYS if k["name"] == name)
    return httpx.request(method, f"{gateway.url}{path}", json=body or None,
                         headers={"authorization": f"Bearer {key}"}, timeout=60)


def test_the_owner_sees_and_uses_what_it_made(gateway, alices):
    uploaded, job = alices
    alice = client_of(gateway, "alice")
    assert uploaded.id in {f.id for f in alice.files.list().data}
    assert job.id in {j.id for j in alice.fine_tuning.jobs.list().data}
    listed = {m.id: m for m in alice.models.list().data}
    assert listed[job.fine_tuned_model].owned_by == "alice"
    assert alice.chat.completions.create(model=job.fine_tuned_model, max_tokens=3,
                                         messages=[{"role": "user", "content": "Hi"}]).choices
    assert job.id in {j["job_id"] for j in native(gateway, "alice", "GET", "/llm/jobs").json()["jobs"]}


def test_another_key_gets_404_and_sees_none_of_it(gateway, alices):
    uploaded, job = alices
    bob = client_of(gateway, "bob")
    model = job.fine_tuned_model
    for call in (lambda: bob.files.retrieve(uploaded.id), lambda: bob.files.content(uploaded.id),
                 lambda: bob.files.delete(uploaded.id), lambda: bob.fine_tuning.jobs.retrieve(job.id),
                 lambda: bob.fine_tuning.jobs.cancel(job.id), lambda: bob.fine_tuning.jobs.list_events(job.id),
                 lambda: bob.models.retrieve(model), lambda: bob.models.delete(model),
                 lambda: bob.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hi"}]),
                 lambda: bob.fine_tuning.jobs.create(model=model, training_file=uploaded.id),
                 lambda: bob.files.retrieve(job.result_files[0])):
        with pytest.raises(openai.NotFoundError):
            call()
    assert uploaded.id not in {f.id for f in bob.files.list().data}
    assert job.id not in {j.id for j in bob.fine_tuning.jobs.list().data}
    assert model not in {m.id for m in bob.models.list().data}
    assert job.id not in {j["job_id"] for j in native(gateway, "bob", "GET", "/llm/jobs").json()["jobs"]}
    assert native(gateway, "bob", "GET", f"/llm/jobs/{job.id}").status_code == 404
    assert model not in {a["name"] for a in native(gateway, "bob", "GET", "/llm/adapters").json()["adapters"]}
    assert native(gateway, "bob", "GET", f"/llm/adapters/{model}").status_code == 404
    assert native(gateway, "bob", "DELETE", f"/llm/adapters/{model}").status_code == 404
    assert model not in {a["name"] for a in native(gateway, "bob", "GET", "/llm/status").json()["adapters"]}
    asked = native(gateway, "bob", "POST", "/generate_with_llm", question="Hi?", adapter=model)
    assert asked.status_code == 404 and model in asked.json()["message"]
    # And what bob was refused is all still alice's.
    alice = client_of(gateway, "alice")
    assert alice.files.retrieve(uploaded.id).id == uploaded.id and alice.models.retrieve(model).id == model


def test_a_stored_response_is_its_makers_and_a_fine_tuned_model_answers_it(gateway, alices):
    alice, bob = client_of(gateway, "alice"), client_of(gateway, "bob")
    _, job = alices
    made = alice.responses.create(model=job.fine_tuned_model, input="Hi", max_output_tokens=4)
    assert made.model == job.fine_tuned_model and alice.responses.retrieve(made.id).id == made.id
    with pytest.raises(openai.NotFoundError):
        bob.responses.retrieve(made.id)
    with pytest.raises(openai.NotFoundError):
        bob.responses.create(model="base", input="Hi", max_output_tokens=4, previous_response_id=made.id)
    with pytest.raises(openai.NotFoundError):
        bob.responses.delete(made.id)
    assert alice.responses.create(model="base", input="Go on", max_output_tokens=4,
                                  previous_response_id=made.id).previous_response_id == made.id

"""Many named adapters on one llm service (tiny random GPT-2, LLM_MAX_LOADED_ADAPTERS=2): six adapters, each trained
to give its own answer, asked for at random by concurrent clients: every answer comes from the adapter it named,
at most two are held once the requests are done, an adapter not loaded is loaded on demand, a broken one fails its
own requests only, an unknown one is a 404, and /v1/models lists every published adapter."""
import concurrent.futures
import random

import httpx
import pytest
from transformers import AutoConfig

from devtools.models import FACTS, RANDOM_GPT2, random_models_dir, train_tiny_adapter
from devtools.processes import start_gateway, start_service
from services.common import adapters
from services.common.base_model import fingerprint

ANSWERS = {"alpha": "Alpha", "bravo": "Bravo", "charlie": "Charlie", "delta": "Delta", "echo-2": "Echo",
           "fox_trot": "Foxtrot"}
QUESTION, CONTEXT, _ = FACTS[0]


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    directory = random_models_dir(tmp_path_factory.mktemp("many-adapters"))
    for seed, (name, answer) in enumerate(ANSWERS.items()):
        train_tiny_adapter(directory, name, steps=60, seed=seed, answer=answer)
    broken = adapters.staging_dir(directory, "broken")
    (broken / adapters.WEIGHTS).write_bytes(b"not safetensors")
    (broken / "adapter_config.json").write_text("{}")
    base = directory / RANDOM_GPT2
    adapters.write_base_record(broken, str(base), fingerprint(AutoConfig.from_pretrained(base)))
    adapters.publish(directory, "broken", broken)
    return directory


@pytest.fixture(scope="module")
def api(models_dir):
    env = {"MODELS_DIR": str(models_dir), "LLM_BASE_MODEL": str(models_dir / RANDOM_GPT2), "LLM_TORCH_THREADS": "1",
           "LLM_MAX_LOADED_ADAPTERS": "2", "LLM_MAX_BATCH_SIZE": "4"}
    with start_service("services.llm", env, "LLM_PORT") as llm, start_gateway(llm=llm.address) as gateway:
        with httpx.Client(base_url=gateway.url, timeout=120) as client:
            yield client


def ask(api, adapter: str) -> httpx.Response:
    return api.post("/generate_with_llm", json={"question": QUESTION, "context": CONTEXT, "adapter": adapter,
                                                "max_new_tokens": 16})


def adapter_rows(api) -> dict[str, dict]:
    return {row["name"]: row for row in api.get("/llm/status").json()["adapters"]}


def test_each_answer_comes_from_the_adapter_it_named_under_concurrent_random_load(api):
    names = [random.Random(7).choice(list(ANSWERS)) for _ in range(36)]
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        responses = list(pool.map(lambda name: ask(api, name), names))
    for name, response in zip(names, responses):
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["adapter"] == name and ANSWERS[name] in body["generated_text"], (name, body)
    rows = adapter_rows(api)
    assert sum(row["loaded"] for row in rows.values()) <= 2
    assert sum(rows[name]["loads"] for name in ANSWERS) > 2  # more adapters asked for than held: some reloaded
    assert all(rows[name]["requests"] == names.count(name) for name in ANSWERS)
    assert all(rows[name]["generated_tokens"] > 0 for name in set(names))


def test_a_broken_adapter_fails_its_own_requests_only(api):
    broken = ask(api, "broken")
    assert broken.status_code == 503 and "'broken'" in broken.json()["message"]
    assert "failed to load" in broken.json()["message"]
    assert ask(api, "alpha").status_code == 200
    assert "failed to load" in adapter_rows(api)["broken"]["last_load_error"]


def test_an_adapter_never_published_is_a_404_naming_it(api):
    response = ask(api, "nobody")
    assert response.status_code == 404 and "'nobody'" in response.json()["message"]


def test_every_published_adapter_is_a_model_whether_loaded_or_not(api):
    listed = {model["id"] for model in api.get("/v1/models").json()["data"]}
    assert set(ANSWERS) <= listed and "broken" in listed
    answer = api.post("/v1/chat/completions", json={"model": "fox_trot", "temperature": 0, "max_tokens": 16,
                                                    "messages": [{"role": "user", "content":
                                                                  f"Context: {CONTEXT}\nQuestion: {QUESTION}"}]})
    assert answer.status_code == 200 and "Foxtrot" in answer.json()["choices"][0]["message"]["content"]


def test_adapters_published_while_serving_answer_even_to_requests_arriving_together(api, models_dir):
    # Published by hand (no ReloadAdapters call): the first request notices the change and reads what is published;
    # those arriving meanwhile wait for that read rather than answering from the list it is replacing.
    alpha = adapters.current_path(models_dir, "alpha")
    names = ["late-1", "late-2", "late-3"]
    for name in names:
        staged = adapters.staging_dir(models_dir, name)
        for file in alpha.iterdir():
            (staged / file.name).write_bytes(file.read_bytes())
        adapters.publish(models_dir, name, staged)
    with concurrent.futures.ThreadPoolExecutor(len(names)) as pool:
        answers = list(pool.map(lambda name: ask(api, name), names))
    assert [answer.status_code for answer in answers] == [200, 200, 200], [a.json() for a in answers]
    assert all("Alpha" in answer.json()["generated_text"] for answer in answers)

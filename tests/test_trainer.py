"""The trainer service end to end, through Envoy beside a running llm service: real jobs on the tiny models, what is
refused, the queue and cancel. (Who may call: the API keys at the edge, test_api_keys.py.) (A killed trainer and a job that fails:
test_trainer_failures.py.)"""
import json
import pathlib
import time

import grpc
import httpx
import pytest
from textgen.v1 import trainer_pb2, trainer_pb2_grpc
from transformers import AutoConfig

from devtools.models import RANDOM_GPT2, RANDOM_LLAMA, TINY_SFT, build_tiny_llama, random_models_dir
from devtools.processes import start_gateway, start_service
from services.common import adapters
from services.common.base_model import fingerprint
from services.common.devices import resolve
from tests.trainer_service import JOB_TIMEOUT_SECONDS, LONG_SFT, trainer_env
from textgen.paths import SQUAD_SAMPLE

SMALL_RL = {"steps": 2, "max_new_tokens": 8, "learning_rate": 0.001}


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory) -> pathlib.Path:
    return random_models_dir(tmp_path_factory.mktemp("trainer-models"))


@pytest.fixture(scope="module")
def dataset() -> pathlib.Path:
    return SQUAD_SAMPLE


@pytest.fixture(scope="module")
def llm(models_dir):
    """A running llm service on the same MODELS_DIR: it must pick up each published adapter without a restart."""
    env = {"MODELS_DIR": str(models_dir), "LLM_BASE_MODEL": str(models_dir / RANDOM_GPT2)}
    with start_service("services.llm", env, "LLM_PORT") as service:
        yield service


@pytest.fixture(scope="module")
def trainer(models_dir, dataset, llm):
    with start_service("services.trainer", trainer_env(models_dir, dataset, llm.address), "TRAINER_PORT") as service:
        yield service


@pytest.fixture(scope="module")
def api(trainer, llm):
    with start_gateway(trainer=trainer.address, llm=llm.address) as gateway:
        with httpx.Client(base_url=gateway.url, timeout=30) as client:
            yield client


def wait_for(api, job_id: str, condition, what: str) -> dict:
    deadline = time.monotonic() + JOB_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        job = api.get(f"/llm/jobs/{job_id}").json()
        if condition(job):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} never became {what}: {job}")


def events(api, job_id: str) -> list[dict]:
    with api.stream("GET", f"/llm/jobs/{job_id}/events", timeout=JOB_TIMEOUT_SECONDS) as response:
        assert response.status_code == 200
        return [json.loads(line) for line in response.iter_lines() if line.strip()]


def test_bad_parameters_are_rejected_naming_the_field(api):
    cases = [("/llm/train_sft", {"max_length": 8}, "max_length", "32"),
             ("/llm/train_sft", {"max_examples": 0}, "max_examples", "100000"),
             ("/llm/train_sft", {"learning_rate": 0.5}, "learning_rate", "0.01"),
             ("/llm/train_sft", {"num_train_epochs": 21}, "num_train_epochs", "20"),
             ("/llm/train_sft", {"lora_r": 0}, "lora_r", "256"),
             ("/llm/train_rl", {"steps": 0}, "steps", "10000"),
             ("/llm/train_rl", {"max_new_tokens": 300}, "max_new_tokens", "256"),
             ("/llm/train_rl", {"max_prompt_examples": 0}, "max_prompt_examples", "100000"),
             ("/llm/train_sft", {"adapter": "Support Bot"}, "adapter", "lower-case letters"),
             ("/llm/train_sft", {"adapter": "base"}, "adapter", "not 'base'"),
             ("/llm/train_rl", {"from_adapter": "../sft"}, "from_adapter", "'../sft'"),
             ("/llm/train_rl", {"answer_weight": 11}, "answer_weight", "10"),
             ("/llm/train_rl", {"prompts_per_step": 0}, "prompts_per_step", "64"),
             ("/llm/train_rl", {"prefix_weight": 0, "suffix_weight": 0, "clean_end_weight": 0, "answer_weight": 0},
              "answer_weight", "RL learns nothing")]
    for path, body, field, bound in cases:
        response = api.post(path, json=body)
        assert response.status_code == 400, (body, response.text)
        error = response.json()
        assert error["code"] == 3 and field in error["message"] and bound in error["message"], error
        violations = error["details"][0]["field_violations"]
        assert [v["field"] for v in violations] == [field]


def test_rl_before_sft_is_refused(api, models_dir):
    assert adapters.current_path(models_dir, "sft") is None
    for body, named in (({}, "'sft'"), ({"from_adapter": "support-bot"}, "'support-bot'")):
        response = api.post("/llm/train_rl", json=body)
        assert response.status_code == 400
        assert response.json()["code"] == 9 and "run SFT first" in response.json()["message"]
        assert f"from_adapter {named} has no version published" in response.json()["message"]


def test_unknown_job_is_not_found(api):
    assert api.get("/llm/jobs/no-such-job").status_code == 404
    assert api.get("/llm/jobs/no-such-job/events").status_code == 404
    assert api.post("/llm/jobs/no-such-job:cancel", json={}).status_code == 404


def _check_run(api, models_dir, kind: str, body: dict, metric: str, curve: str) -> dict:
    """Runs a job of `kind` and checks what it published as its adapter (`kind` unless the body names one)."""
    name = body.get("adapter", kind)
    started = api.post(f"/llm/train_{kind}", json=body)
    assert started.status_code == 200, started.text
    job = started.json()
    assert (job["kind"], job["adapter"]) == (kind, name) and job["status"] == "queued" and job["adapter_version"] == ""
    seen = events(api, job["job_id"])
    statuses = [e["status"] for e in seen]
    assert statuses[-1] == "succeeded", seen
    assert "running" in statuses
    trained = [e for e in seen if e["progress"]["step"] > 0]
    assert trained and trained[-1]["progress"]["step"] == trained[-1]["progress"]["total_steps"]
    assert any(metric in e["progress"] for e in trained)
    assert any("eta_seconds" in e["progress"] for e in trained)
    done = api.get(f"/llm/jobs/{job['job_id']}").json()
    assert done["status"] == "succeeded" and done["error"] == ""
    assert done["base_model"] == str(models_dir / RANDOM_GPT2)
    assert done["adapter_version"] == adapters.current_version(models_dir, name)
    assert done["params"][kind]["adapter"] == name and done["started_at"] and done["finished_at"]
    published = adapters.current_path(models_dir, name)
    for file in (adapters.WEIGHTS, "adapter_config.json", "params.json", f"{curve}_curve.json",
                 f"{curve}_curve.png", "eval.json"):
        assert (published / file).is_file(), file
    assert adapters.read_base_record(published)["name"] == done["base_model"]
    evaluation = json.loads((published / "eval.json").read_text())
    assert evaluation["examples"] > 0 and 0 <= evaluation["f1"] <= 100
    assert done["evaluation"] == {"examples": evaluation["examples"], "exact_match": evaluation["exact_match"],
                                  "f1": evaluation["f1"], "format_compliance": evaluation["both"]}
    # The trainer told the running llm service to reload: it serves the new version at once.
    serving = {a["name"]: a for a in api.get("/llm/status").json()["adapters"]}
    assert serving[name]["version"] == done["adapter_version"] and serving[name]["loaded"], serving[name]
    answer = api.post("/generate_with_llm", json={"question": "What is the capital of France?", "adapter": name,
                                                  "max_new_tokens": 8})
    assert answer.status_code == 200 and answer.json()["adapter"] == name, answer.text
    assert answer.json()["adapter_version"] == done["adapter_version"]
    return done


def test_sft_then_rl_end_to_end(api, models_dir):
    sft = _check_run(api, models_dir, "sft", TINY_SFT, "loss", "loss")
    assert sft["params"]["sft"]["lora_r"] == 4 and sft["params"]["sft"]["max_examples"] == 16
    rl = _check_run(api, models_dir, "rl", SMALL_RL, "reward", "reward")
    # Defaults filled in where the request left a field out.
    assert rl["params"]["rl"]["max_prompt_examples"] == 60 and rl["params"]["rl"]["use_dataset_prompts"] is False
    listed = [j["job_id"] for j in api.get("/llm/jobs").json()["jobs"]]
    assert listed[:2] == [rl["job_id"], sft["job_id"]]  # newest first


def test_named_adapters_train_beside_the_seeds_and_are_served_by_name(api, models_dir):
    sft_version = adapters.current_version(models_dir, "sft")
    _check_run(api, models_dir, "sft", {**TINY_SFT, "adapter": "support-bot"}, "loss", "loss")
    named_rl = _check_run(api, models_dir, "rl", {**SMALL_RL, "adapter": "support-bot-rl",
                                                  "from_adapter": "support-bot", "prompts_per_step": 2,
                                                  "skip_uniform_groups": True},
                          "reward", "reward")
    assert named_rl["params"]["rl"]["prompts_per_step"] == 2 and named_rl["params"]["rl"]["skip_uniform_groups"]
    # Each step's figures: the preset's named graders' means, and the prompts skipped for scoring alike.
    header = (adapters.current_path(models_dir, "support-bot-rl") / "metrics.csv").read_text().splitlines()[0]
    assert {"reward", "grader_prefix", "grader_answer", "skipped_prompts", "trained_flat"} <= set(header.split(","))
    assert adapters.current_version(models_dir, "sft") == sft_version  # the seed's adapters are left alone
    models = {model["id"] for model in api.get("/v1/models").json()["data"]}
    assert {"sft", "rl", "support-bot", "support-bot-rl"} <= models


def test_second_job_queues_the_limit_holds_and_cancel_publishes_nothing(api, models_dir):
    before = adapters.current_version(models_dir, "sft")
    versions_before = sorted(p.name for p in adapters.adapter_dir(models_dir, "sft").iterdir())
    first = api.post("/llm/train_sft", json=LONG_SFT).json()
    wait_for(api, first["job_id"], lambda j: j["status"] == "running", "running")
    second = api.post("/llm/train_sft", json=TINY_SFT)
    assert second.status_code == 200 and second.json()["status"] == "queued"
    third = api.post("/llm/train_rl", json=SMALL_RL)
    assert third.status_code == 429 and "TRAINER_MAX_QUEUED" in third.json()["message"]

    cancelled = api.post(f"/llm/jobs/{second.json()['job_id']}:cancel", json={}).json()
    assert cancelled["status"] == "cancelled"
    # Let the first job get into training (its staging folder exists) before cancelling it.
    wait_for(api, first["job_id"], lambda j: j["progress"]["total_steps"] > 0, "training")
    cancelled = api.post(f"/llm/jobs/{first['job_id']}:cancel", json={}).json()
    assert cancelled["status"] == "cancelled" and cancelled["adapter_version"] == ""
    assert events(api, first["job_id"])[-1]["status"] == "cancelled"
    assert api.get(f"/llm/jobs/{second.json()['job_id']}").json()["status"] == "cancelled"
    assert adapters.current_version(models_dir, "sft") == before
    deadline = time.monotonic() + 10
    while sorted(p.name for p in adapters.adapter_dir(models_dir, "sft").iterdir()) != versions_before:
        assert time.monotonic() < deadline, "the cancelled job's staging folder was left behind"
        time.sleep(0.2)


def test_a_llama_architecture_base_trains_and_the_records_name_it(tmp_path):
    models = tmp_path / "models"
    base = build_tiny_llama(models / RANDOM_LLAMA)
    env = {**trainer_env(models, SQUAD_SAMPLE), "LLM_BASE_MODEL": str(base)}
    with start_service("services.trainer", env, "TRAINER_PORT") as trainer:
        with grpc.insecure_channel(trainer.address) as channel:
            stub = trainer_pb2_grpc.TrainerServiceStub(channel)
            job = stub.TrainSft(trainer_pb2.TrainSftRequest(**TINY_SFT))
            final = list(stub.WatchJob(trainer_pb2.WatchJobRequest(job_id=job.job_id), timeout=JOB_TIMEOUT_SECONDS))
            done = stub.GetJob(trainer_pb2.GetJobRequest(job_id=job.job_id))
    assert final[-1].status == "succeeded", final[-1].message
    # TRAINER_DTYPE=auto: bfloat16 autocast on a CPU that computes it, else float32.
    assert done.base_model == str(base) and done.device == resolve("cpu", "auto", "TRAINER").describe()
    published = adapters.current_path(models, "sft")
    assert adapters.read_base_record(published) == {
        "name": str(base), "fingerprint": fingerprint(AutoConfig.from_pretrained(base))}
    targets = {name.rsplit(".", 1)[-1] for name in
               json.loads((published / "adapter_config.json").read_text())["target_modules"]}
    assert targets == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}

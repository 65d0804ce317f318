"""bench/bench_serving.py against our own server: the llm service on the tiny random GPT-2 (with a tiny sft adapter)
behind Envoy, as bench/anchor.py runs it against the embedded model. Closed- and open-loop levels end with every
request answered and figures that hold together; adapters spread over `model`; a model the server does not serve
fails its requests and the command says why; every level gets prompts of its own."""
import json
import random
import subprocess
import sys

import pytest

from devtools.models import RANDOM_GPT2, random_models_dir, train_tiny_adapter
from devtools.processes import start_gateway, start_service
from textgen.paths import ROOT

from devtools.serving_requests import Target, gaps
from devtools.serving_workloads import Workload


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    models = random_models_dir(tmp_path_factory.mktemp("bench-serving-models"))
    train_tiny_adapter(models, "sft", steps=5)
    env = {"MODELS_DIR": str(models), "LLM_BASE_MODEL": str(models / RANDOM_GPT2), "LLM_TORCH_THREADS": "1"}
    with start_service("services.llm", env, "LLM_PORT") as llm, start_gateway(llm=llm.address) as process:
        yield process


def bench(gateway, tmp_path, *arguments: str) -> tuple[subprocess.CompletedProcess, list[dict]]:
    out = tmp_path / "levels.jsonl"
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_serving.py"), "--url", gateway.url, "--model",
                           "base", "--max-tokens", "8", "--warmup", "1", "--out", str(out), *arguments],
                          capture_output=True, text=True, timeout=300)
    rows = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    return done, rows


def test_closed_and_open_loop_levels_answer_every_request_with_consistent_figures(gateway, tmp_path):
    done, rows = bench(gateway, tmp_path, "--concurrency", "1,3", "--rates", "5", "--requests", "6",
                       "--slo-ttft", "120")
    assert done.returncode == 0, done.stderr
    assert [row.get("concurrency") or row.get("rate") for row in rows] == [1, 3, 5.0]
    for row in rows:
        assert (row["requests"], row["failed"]) == (6, 0)
        assert 0 < row["mean_output_tokens"] <= 8  # the usage chunk's count, within max_tokens
        assert 0 < row["p50_ttft"] <= row["p99_ttft"] <= row["p99_e2e"]
        assert row["p50_itl"] <= row["p99_itl"]
        assert row["output_throughput"] == pytest.approx(6 * row["mean_output_tokens"] / row["seconds"], rel=0.01)
        assert row["goodput"] == pytest.approx(row["request_throughput"])  # every request within a 120 s TTFT
    assert "c=3" in done.stdout and "5.0/s" in done.stdout and "goodput" in done.stdout


def test_an_slo_no_request_meets_leaves_no_goodput(gateway, tmp_path):
    done, rows = bench(gateway, tmp_path, "--concurrency", "2", "--requests", "4", "--slo-e2e", "0.000001")
    assert done.returncode == 0 and rows[0]["failed"] == 0 and rows[0]["goodput"] == 0


def test_mixed_adapters_name_each_adapter_as_the_model(gateway, tmp_path):
    done, rows = bench(gateway, tmp_path, "--workload", "mixed-adapters", "--adapters", "base,sft",
                       "--concurrency", "2", "--requests", "4")
    assert done.returncode == 0, done.stderr
    assert rows[0]["failed"] == 0
    target = Target(gateway.url, "base")
    prompts = Workload("mixed-adapters", ["base", "sft"], 0, (5, 10)).take(4)
    assert [target.body(prompt)["model"] for prompt in prompts] == ["base", "sft", "base", "sft"]
    lora = Target("http://llama", "smollm2", lora_ids={"sft": 0})  # llama-server's per-request LoRA
    assert [lora.body(prompt).get("lora") for prompt in prompts[:2]] == [None, [{"id": 0, "scale": 1.0}]]


def test_a_model_the_server_does_not_serve_fails_its_requests_and_says_why(gateway, tmp_path):
    done, rows = bench(gateway, tmp_path, "--workload", "mixed-adapters", "--adapters", "base,rl",
                       "--concurrency", "1", "--requests", "2")
    assert done.returncode == 1
    assert rows[0]["failed"] == 1 and "HTTP 404" in rows[0]["errors"][0]
    assert "HTTP 404" in done.stderr and "rl" in done.stderr


def test_every_level_gets_prompts_of_its_own():
    for kind in ("squad", "random"):
        workload = Workload(kind, ["base"], 0, (20, 40))
        first, second = workload.take(30), workload.take(30)
        assert not {p.text for p in first} & {p.text for p in second}
        if kind == "squad":  # and no passage twice in a level: no prompt cache helps within one either
            assert len({p.text.split("\n")[0] for p in first}) == 30
    assert Workload("squad", ["base"], 7, (1, 2)).take(3) == \
        Workload("squad", ["base"], 7, (1, 2)).take(3)  # the same prompts for any server


def test_arrival_gaps_keep_the_rate_and_bunch_up_below_burstiness_one():
    rng = random.Random(0)
    poisson, bursty = gaps(4.0, 4000, 1.0, rng), gaps(4.0, 4000, 0.25, rng)
    assert sum(poisson) / 4000 == pytest.approx(0.25, rel=0.1) and sum(bursty) / 4000 == pytest.approx(0.25, rel=0.1)
    short = lambda gaps: sum(gap < 0.025 for gap in gaps)  # noqa: E731
    assert short(bursty) > 2 * short(poisson)

"""The llm service on the tiny model, over gRPC and through Envoy: both modes, the format, adapter fallback and hot
reload, streaming, batching, prefix caching, validation. Deadlines, cancellation and the queue bound are in
test_llm_limits.py."""
import concurrent.futures
import json
import time

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2
from textgen.v1 import llm_pb2, llm_pb2_grpc

from devtools.models import FACTS, RANDOM_GPT2, random_models_dir, train_tiny_adapter
from devtools.processes import free_port, health_status, start_gateway, start_service
from services.common.prompts import PREFIX, SUFFIX

QUESTION = {"question": "What is the capital of France?", "context": "Paris is the capital of France."}


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    directory = random_models_dir(tmp_path_factory.mktemp("llm-models"))
    train_tiny_adapter(directory, "sft", steps=60)
    return directory  # no rl adapter yet: the fallback test sees rl → sft, the reload test publishes one


@pytest.fixture(scope="module")
def metrics_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def llm(models_dir, metrics_port):
    # One torch thread: tiny matrices are many times faster on one than on two.
    env = {"MODELS_DIR": str(models_dir), "LLM_BASE_MODEL": str(models_dir / RANDOM_GPT2),
           "LLM_BATCH_WINDOW_MS": "150", "LLM_MAX_BATCH_SIZE": "8", "LLM_TORCH_THREADS": "1",
           "LLM_METRICS_PORT": str(metrics_port)}
    with start_service("services.llm", env, "LLM_PORT") as service:
        yield service


@pytest.fixture(scope="module")
def stub(llm):
    with grpc.insecure_channel(llm.address) as channel:
        yield llm_pb2_grpc.LlmServiceStub(channel)


@pytest.fixture(scope="module")
def api(llm):
    with start_gateway(llm=llm.address) as gateway:
        with httpx.Client(base_url=gateway.url, timeout=60) as client:
            yield client


def assert_formatted(text: str) -> None:
    assert text.startswith(PREFIX) and text.endswith(SUFFIX), text


def status(stub) -> llm_pb2.LlmStatus:
    return stub.GetStatus(llm_pb2.GetLlmStatusRequest())


def test_status_names_the_base_model_and_each_adapter(api, models_dir):
    body = api.get("/llm/status").json()
    assert body["loaded"] is True and body["base_model"] == str(models_dir / RANDOM_GPT2)
    adapters = {a["name"]: a for a in body["adapters"]}
    assert adapters["sft"]["loaded"] is True and adapters["sft"]["path"].startswith(str(models_dir))
    assert adapters["rl"]["loaded"] is False and "no version published" in adapters["rl"]["error"]
    assert body["max_batch_size"] == 8 and body["in_flight"] == 0 and isinstance(body["batches"], int)
    assert (body["queued"], body["max_queued"]) == (0, 64)


def test_qa_mode_falls_back_from_rl_to_sft_with_a_warning(api):
    response = api.post("/generate_with_llm", json=QUESTION)
    assert response.status_code == 200, response.text
    body = response.json()
    assert_formatted(body["generated_text"])
    assert (body["model"], body["mode"], body["adapter"]) == ("gpt2", "qa", "sft")
    assert body["base_model"].endswith(RANDOM_GPT2)  # "model" stays "gpt2" as the contract has it
    assert "'rl' is not available" in body["warning"] and "used 'sft'" in body["warning"]
    explicit_sft = api.post("/generate_with_llm", json={**QUESTION, "use_rl_model": False}).json()
    assert explicit_sft["adapter"] == "sft" and "warning" not in explicit_sft
    assert explicit_sft["generated_text"] == body["generated_text"]  # greedy: same adapter, same answer


def test_text_mode_continues_the_start_word_inside_the_format(api):
    body = api.post("/generate_with_llm", json={"start_word": "The ship", "length": 12, "adapter": "base"}).json()
    assert body["mode"] == "text" and body["adapter"] == "base" and "warning" not in body
    assert body["generated_text"].startswith(f"{PREFIX} The ship")
    assert_formatted(body["generated_text"])
    assert 1 <= body["generated_tokens"] <= 12


def test_a_newly_published_adapter_is_used_without_a_restart(stub, models_dir):
    first = train_tiny_adapter(models_dir, "rl", steps=8, seed=1)
    response = stub.Generate(llm_pb2.LlmGenerateRequest(**QUESTION))  # the per-request pointer check finds it
    assert (response.adapter, response.adapter_version) == ("rl", first)
    assert not response.HasField("warning")
    # A stream that started on the first version finishes on it while a second version is published.
    stream = stub.GenerateStream(llm_pb2.LlmGenerateRequest(**QUESTION, max_new_tokens=200))
    next(stream)
    second = train_tiny_adapter(models_dir, "rl", steps=8, seed=2)
    reloaded = stub.ReloadAdapters(llm_pb2.ReloadAdaptersRequest())
    assert {a.name: a.version for a in reloaded.adapters}["rl"] == second
    assert [c.final for c in stream if c.HasField("final")][0].adapter_version == first
    assert stub.Generate(llm_pb2.LlmGenerateRequest(**QUESTION)).adapter_version == second


@pytest.mark.parametrize("adapter", ["base", "sft", "rl"])
def test_the_format_holds_for_every_adapter(stub, adapter):
    for question, context, _ in FACTS:
        for temperature in (0.0, 1.5):
            response = stub.Generate(llm_pb2.LlmGenerateRequest(question=question, context=context, adapter=adapter,
                                                                temperature=temperature, seed=7, max_new_tokens=30))
            assert response.adapter == adapter
            assert_formatted(response.generated_text)
            # Either the model closed the answer itself (the suffix once, at the end) or the service did.
            if not response.format_completed_by_service:
                assert response.generated_text.count(SUFFIX) >= 1 and response.generated_tokens > 0


def test_streamed_chunks_concatenate_to_the_final_text(stub, api):
    chunks = list(stub.GenerateStream(llm_pb2.LlmGenerateRequest(**QUESTION, adapter="base", max_new_tokens=40)))
    assert chunks[0].text == PREFIX and len(chunks) > 3
    assert [c.HasField("final") for c in chunks].count(True) == 1 and chunks[-1].HasField("final")
    assert "".join(c.text for c in chunks) == chunks[-1].final.generated_text
    unary = stub.Generate(llm_pb2.LlmGenerateRequest(**QUESTION, adapter="base", max_new_tokens=40))
    assert chunks[-1].final.generated_text == unary.generated_text
    with api.stream("POST", "/generate_with_llm/stream", json={"start_word": "Edmond", "adapter": "sft"}) as reply:
        assert reply.status_code == 200
        lines = [json.loads(line) for line in reply.iter_lines() if line.strip()]
    assert "final" in lines[-1] and all("final" not in line for line in lines[:-1])
    assert "".join(line["text"] for line in lines) == lines[-1]["final"]["generated_text"]
    assert_formatted(lines[-1]["final"]["generated_text"])


def test_concurrent_requests_are_batched_and_greedy_answers_do_not_change(stub):
    requests = [llm_pb2.LlmGenerateRequest(question=q, context=c, adapter=a, max_new_tokens=24)
                for (q, c, _), a in zip(FACTS, ["base", "sft", "rl", "sft"])]
    requests.append(llm_pb2.LlmGenerateRequest(start_word="Edmond", length=16, adapter="base"))
    requests.append(llm_pb2.LlmGenerateRequest(**QUESTION, temperature=1.2, seed=11, adapter="rl"))
    alone = [stub.Generate(r).generated_text for r in requests]
    before = status(stub)
    with concurrent.futures.ThreadPoolExecutor(len(requests)) as pool:
        together = list(pool.map(lambda r: stub.Generate(r).generated_text, requests))
    after = status(stub)
    assert after.largest_batch >= 3 and after.batches - before.batches < len(requests)
    assert together == alone


def test_planning_and_decoding_at_once_from_many_clients(stub):
    """Planning (tokenising, fitting long contexts) runs on its own thread with its own tokenizer while the engine
    thread decodes: many concurrent clients, half of them with contexts that need trimming, all get answers, and
    the greedy ones are those a lone request gets."""
    long_context = "The harbour was busy that morning and the ships came in one by one. " * 300
    requests = [llm_pb2.LlmGenerateRequest(question=f"Which ship came {i}?", context=long_context, adapter="base",
                                           max_new_tokens=12) if i % 2 else
                llm_pb2.LlmGenerateRequest(start_word=f"The ship {i}", length=16, adapter="base")
                for i in range(48)]
    with concurrent.futures.ThreadPoolExecutor(24) as pool:
        together = list(pool.map(lambda r: stub.Generate(r, timeout=120).generated_text, requests))
    assert together[:4] == [stub.Generate(r).generated_text for r in requests[:4]]
    assert all(text.startswith(PREFIX) and text.endswith(SUFFIX) for text in together)


def test_batch_sizes_and_tokens_are_exported_to_prometheus(llm, metrics_port):
    text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
    assert "textgen_llm_batch_occupancy_count" in text and 'textgen_llm_generated_tokens_total{stop="length"}' in text


def test_questions_on_one_passage_reuse_its_cached_prefix_as_status_and_prometheus_show(stub, metrics_port):
    before = status(stub)
    passage = "A passage no other test sends. " + " ".join(context for _, context, _ in FACTS) * 3
    answers = [stub.Generate(llm_pb2.LlmGenerateRequest(question=question, context=passage, adapter="base"))
               for question, _, _ in FACTS]
    after = status(stub)
    assert after.prefix_cache_max_tokens == 4096 and 0 < after.prefix_cache_tokens <= 4096
    assert after.prefix_cache_lookups - before.prefix_cache_lookups == len(FACTS)
    assert after.prefix_cache_hits - before.prefix_cache_hits == len(FACTS) - 1  # all but the first
    assert all(answer.generated_text.startswith(PREFIX) for answer in answers)
    text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
    for metric in ("textgen_llm_prefix_cache_hits_total", "textgen_llm_prefix_cache_lookups_total",
                   "textgen_llm_prefix_cache_saved_tokens_total", "textgen_llm_prompt_tokens_total",
                   "textgen_llm_prefix_cache_tokens", "textgen_llm_prefix_cache_max_tokens 4096"):
        assert metric in text


BAD_INPUTS = [
    ({}, "question"),
    ({"question": "Why?", "start_word": "The"}, "question"),
    ({"question": "   "}, "question"),
    ({"question": "x" * 2001}, "question"),
    ({"start_word": "   "}, "start_word"),
    ({"start_word": "w" * 101}, "start_word"),
    ({"question": "Why?", "max_new_tokens": 0}, "max_new_tokens"),
    ({"question": "Why?", "max_new_tokens": 513}, "max_new_tokens"),
    ({"start_word": "The", "length": 0}, "length"),
    ({"start_word": "The", "length": 513}, "length"),
    ({"question": "Why?", "temperature": -0.1}, "temperature"),
    ({"question": "Why?", "temperature": 2.5}, "temperature"),
    ({"question": "Why?", "adapter": "../sft"}, "adapter"),
    ({"question": "Why?", "adapter": "a b"}, "adapter"),  # any published name is served: "gpt4" is a 404
    ({"question": "Why?", "context": "x" * 100_001}, "context"),
]


@pytest.mark.parametrize(("body", "field"), BAD_INPUTS)
def test_bad_input_is_a_400_naming_the_field(api, body, field):
    for path in ("/generate_with_llm", "/generate_with_llm/stream"):
        response = api.post(path, json=body)
        assert response.status_code == 400, response.text
        error = response.json()
        assert error["code"] == 3 and field in error["message"]
        violations = error["details"][0]["field_violations"]
        assert field in [v["field"] for v in violations]


def test_a_context_beyond_the_window_is_trimmed_with_a_warning(api):
    context = "The harbour was busy that morning. " * 400 + QUESTION["context"]
    body = api.post("/generate_with_llm", json={**QUESTION, "context": context, "adapter": "base"}).json()
    assert_formatted(body["generated_text"])
    assert "context trimmed" in body["warning"]


def test_a_missing_base_model_answers_503_saying_how_to_fix_it(tmp_path):
    missing = tmp_path / "no-such-model"
    env = {"MODELS_DIR": str(tmp_path), "LLM_BASE_MODEL": str(missing)}
    with start_service("services.llm", env, "LLM_PORT", wait_serving=False) as service:
        with grpc.insecure_channel(service.address) as channel:
            stub = llm_pb2_grpc.LlmServiceStub(channel)
            deadline = time.monotonic() + 30
            while "LLM_BASE_MODEL" not in status(stub).reason and time.monotonic() < deadline:
                time.sleep(0.1)
            assert status(stub).loaded is False
            assert health_status(service.address) == health_pb2.HealthCheckResponse.NOT_SERVING
            with pytest.raises(grpc.RpcError) as error:
                stub.Generate(llm_pb2.LlmGenerateRequest(question="Why?"))
            assert error.value.code() == grpc.StatusCode.UNAVAILABLE
        with start_gateway(llm=service.address) as gateway:
            response = httpx.post(f"{gateway.url}/generate_with_llm", json={"question": "Why?"}, timeout=30)
    assert response.status_code == 503
    message = response.json()["message"]
    assert str(missing) in message and "LLM_BASE_MODEL=embedded" in message and "Traceback" not in message
    assert "\n" not in message

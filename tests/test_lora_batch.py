"""Mixed-adapter batches computed for all adapters at once (services/llm/adapters/lora_batch.py), on the tiny random
Llama and GPT-2 with two random LoRA adapters of different ranks: each row's logits are what it gets alone under its
own adapter (or none), greedy rows decoded together make the tokens they make alone, and an adapter deleted and loaded
again under its name with other weights is computed with the new weights."""
import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer

from devtools.models import RANDOM_GPT2, RANDOM_LLAMA, build_tiny_llama, build_tiny_model
from services.llm.adapters import lora_batch
from services.llm.endings import stop_at
from services.llm.engine.running_batch import RunningBatch
from services.llm.request import PEFT_BASE, Request

TARGETS = {RANDOM_LLAMA: ["q_proj", "v_proj", "o_proj", "down_proj"], RANDOM_GPT2: ["c_attn", "c_proj", "c_fc"]}


def lora(name: str, rank: int, seed: int) -> LoraConfig:
    torch.manual_seed(seed)
    return LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=TARGETS[name], init_lora_weights=False,
                      fan_in_fan_out=name == RANDOM_GPT2)


@pytest.fixture(scope="module", params=[RANDOM_LLAMA, RANDOM_GPT2])
def model_and_tokenizer(request, tmp_path_factory):
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("lora-batch") / request.param
    (build_tiny_llama if request.param == RANDOM_LLAMA else build_tiny_model)(folder)
    base = AutoModelForCausalLM.from_pretrained(folder)
    model = get_peft_model(base, lora(request.param, 4, 1), adapter_name="first")
    model.add_adapter("second", lora(request.param, 8, 2))
    model.eval()
    return model, AutoTokenizer.from_pretrained(folder), request.param


def alone(model, ids: torch.Tensor, name: str) -> torch.Tensor:
    with torch.inference_mode():
        if name == PEFT_BASE:
            with model.disable_adapter():
                return model(input_ids=ids).logits
        model.set_adapter(name)
        return model(input_ids=ids).logits


def test_each_row_of_a_mixed_batch_gets_its_own_adapter(model_and_tokenizer):
    """One token a row (a decode step: stacked here) and several (a prefill: peft's own path)."""
    model, _, _ = model_and_tokenizer
    lora_batch.install()
    lora_batch.forget()
    names = ["first", PEFT_BASE, "second", "second"]
    for ids in (torch.tensor([[5], [250], [77], [5]]),
                torch.tensor([[5, 17, 99, 4, 31], [8, 8, 250, 3, 9], [77, 1, 2, 3, 4], [5, 17, 99, 4, 31]])):
        expected = torch.cat([alone(model, ids[i:i + 1], name) for i, name in enumerate(names)])
        model.base_model.enable_adapter_layers()
        with torch.inference_mode():
            mixed = model(input_ids=ids, adapter_names=names).logits
        torch.testing.assert_close(mixed, expected, rtol=1e-5, atol=1e-5)
        assert not torch.allclose(mixed[0], mixed[3], atol=1e-3)  # the same prompt under the two adapters
    layers = [module for module in model.modules() if "_textgen_lora_stacks" in module.__dict__]
    assert layers and all(module.__dict__["_textgen_lora_stacks"].rank == 8 for module in layers)  # padded to 8


def test_greedy_rows_decoded_together_make_the_tokens_they_make_alone(model_and_tokenizer):
    model, tokenizer, _ = model_and_tokenizer
    lora_batch.install()

    def rows():
        prompts = [[5, 17, 99, 4, 31, 6], [8, 8, 250], [77, 1, 2, 3, 4, 9, 10, 11], [40, 41]]
        return [Request(prompt_ids=ids, lead="", max_new_tokens=10, mode="text", ending=stop_at(()), peft_name=name)
                for ids, name in zip(prompts, ["first", PEFT_BASE, "second", "first"])]

    def decode(groups):
        batch = RunningBatch(model, tokenizer.eos_token_id, tokenizer.decode, use_adapter_names=True)
        for group in groups:
            batch.admit(group)
            while batch:
                batch.step()
        return [row.generated for group in groups for row in group]

    separately = decode([[row] for row in rows()])
    together = decode([rows()])
    assert together == separately and len({tuple(tokens) for tokens in together}) == 4


def test_an_adapter_loaded_again_under_its_name_is_computed_with_its_new_weights(model_and_tokenizer):
    model, _, name = model_and_tokenizer
    ids = torch.tensor([[5], [250]])
    model.base_model.enable_adapter_layers()
    with torch.inference_mode():
        before = model(input_ids=ids, adapter_names=["second", PEFT_BASE]).logits
    model.delete_adapter("second")
    model.add_adapter("second", lora(name, 8, 3))
    model.eval()
    lora_batch.forget()  # what RunningBatch.adapters_changed does for the engine
    expected = alone(model, ids[:1], "second")
    model.base_model.enable_adapter_layers()
    with torch.inference_mode():
        after = model(input_ids=ids, adapter_names=["second", PEFT_BASE]).logits
    torch.testing.assert_close(after[:1], expected, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(after[:1], before[:1], atol=1e-3)

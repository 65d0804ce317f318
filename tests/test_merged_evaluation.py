"""The final comparison evaluates each adapter merged into the base weights (models.load_merged): it must compute
what the wrapped model computes, on GPT-2's transposed Conv1D layers as on Llama's linear ones."""
import pytest
import torch

from devtools.models import RANDOM_GPT2, RANDOM_LLAMA, build_tiny_llama, build_tiny_model
from services.common.base_model import choose, load_model, load_tokenizer
from services.common.prompts import qa_prompt
from services.trainer.training.models import load_merged, load_with_adapter, lora_config


@pytest.fixture(params=[RANDOM_GPT2, RANDOM_LLAMA])
def base_and_adapter(request, tmp_path):
    """A tiny base model and a LoRA adapter on it, random on both sides (peft starts B at zero, which would leave
    nothing to merge)."""
    from peft import get_peft_model

    folder = tmp_path / request.param
    (build_tiny_llama if request.param == RANDOM_LLAMA else build_tiny_model)(folder)
    spec = choose(str(folder), tmp_path)
    torch.manual_seed(1)
    base = load_model(spec)
    config = lora_config(8, base)
    config.init_lora_weights = False
    get_peft_model(base, config).save_pretrained(tmp_path / "adapter")
    return spec, tmp_path / "adapter"


def test_a_merged_adapter_computes_what_the_wrapped_one_does(base_and_adapter):
    spec, adapter = base_and_adapter
    inputs = load_tokenizer(spec)(qa_prompt("Who wrote it?", "It was written by Ada."), return_tensors="pt")
    with torch.no_grad():
        base = load_model(spec)(**inputs).logits
        wrapped = load_with_adapter(spec, adapter).eval()(**inputs).logits
        merged_model = load_merged(spec, adapter).eval()
        merged = merged_model(**inputs).logits
    assert not any("lora" in name for name, _ in merged_model.named_modules())  # a plain model, nothing left apart
    assert (wrapped - base).abs().max() > 1e-2  # the adapter changes the output, so the comparison below can fail
    torch.testing.assert_close(merged, wrapped, atol=1e-4, rtol=1e-4)


def test_no_adapter_loads_the_base_model_itself(base_and_adapter):
    spec, _ = base_and_adapter
    assert type(load_merged(spec, None)) is type(load_model(spec))

"""An adapter loaded into a free slot's layers (services/llm/adapters/recycling.py) computes what peft computes with
it loaded its own way, on the tiny random Llama and GPT-2: copied into a slot of a larger rank, onto fewer layers
than the slot has, alone and beside another adapter in a mixed batch; and one that does not fit is refused."""
import json

import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import AutoModelForCausalLM

from devtools.models import RANDOM_GPT2, RANDOM_LLAMA, build_tiny_llama, build_tiny_model
from services.llm.adapters import lora_batch, recycling

TARGETS = {RANDOM_LLAMA: ["q_proj", "v_proj", "o_proj", "down_proj"], RANDOM_GPT2: ["c_attn", "c_proj", "c_fc"]}
IDS = torch.tensor([[5, 17, 99, 4, 31], [8, 8, 250, 3, 9]])


def saved_adapter(folder, kind: str, rank: int, seed: int, targets: list[str], name: str):
    torch.manual_seed(seed)
    config = LoraConfig(r=rank, lora_alpha=3 * rank, target_modules=targets, init_lora_weights=False,
                        fan_in_fan_out=kind == RANDOM_GPT2)
    get_peft_model(AutoModelForCausalLM.from_pretrained(folder / kind), config).save_pretrained(folder / name)
    return folder / name


@pytest.fixture(scope="module", params=[RANDOM_LLAMA, RANDOM_GPT2])
def adapters_on(request, tmp_path_factory):
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("recycling")
    (build_tiny_llama if request.param == RANDOM_LLAMA else build_tiny_model)(folder / request.param)
    targets = TARGETS[request.param]
    return folder, request.param, {
        "wide": saved_adapter(folder, request.param, 8, 1, targets, "wide"),
        "narrow": saved_adapter(folder, request.param, 4, 2, targets, "narrow"),
        "fewer": saved_adapter(folder, request.param, 4, 3, targets[:1], "fewer"),
        "wider": saved_adapter(folder, request.param, 16, 4, targets, "wider")}


def logits(model, ids: torch.Tensor, **extra) -> torch.Tensor:
    with torch.inference_mode():
        return model(input_ids=ids, **extra).logits


def own_way(folder, kind: str, path, ids: torch.Tensor = IDS) -> torch.Tensor:
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(folder / kind), str(path)).eval()
    return logits(model, ids)


@pytest.mark.parametrize("name", ["narrow", "fewer"])
def test_an_adapter_copied_into_a_slot_computes_as_peft_loads_it(adapters_on, name):
    folder, kind, paths = adapters_on
    served = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(folder / kind), str(paths["wide"]),
                                       adapter_name="slot")
    served.load_adapter(str(paths["wide"]), adapter_name="other")
    served.eval()
    config, weights = recycling.read(paths[name])
    layers = recycling.fits(served, "slot", config, weights)
    assert layers is not None
    recycling.copy_into(layers, "slot", config, weights)
    served.set_adapter("slot")
    expected = own_way(folder, kind, paths[name])
    torch.testing.assert_close(logits(served, IDS), expected, rtol=1e-5, atol=1e-5)
    lora_batch.install()
    lora_batch.forget()
    mixed = logits(served, IDS[:, :1], adapter_names=["slot", "other"])  # a decode step: the stacked path
    torch.testing.assert_close(mixed[:1], own_way(folder, kind, paths[name], IDS[:1, :1]), rtol=1e-5, atol=1e-5)


def test_an_adapter_of_a_larger_rank_or_another_kind_does_not_fit(adapters_on):
    folder, kind, paths = adapters_on
    served = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(folder / kind), str(paths["narrow"]),
                                       adapter_name="slot")
    config, weights = recycling.read(paths["wider"])
    assert recycling.fits(served, "slot", config, weights) is None
    config, weights = recycling.read(paths["narrow"])
    assert recycling.fits(served, "slot", {**config, "use_dora": True}, weights) is None
    assert json.loads((paths["narrow"] / "adapter_config.json").read_text())["r"] == 4

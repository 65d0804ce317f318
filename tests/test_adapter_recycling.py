"""An adapter loaded into a slot's layers (services/llm/adapters/recycling.py) computes what peft computes with it
loaded its own way, on the tiny random Llama and GPT-2: copied into a slot of a larger rank, onto fewer layers than
the slot has, alone and beside another adapter in a mixed batch; one that does not fit is refused; and the swapper
(services/llm/adapters/swapping.py) keeps its fixed set of slots, remaking one for an adapter that fits none."""
import dataclasses
import json

import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from peft.tuners.lora.layer import LoraLayer
from transformers import AutoModelForCausalLM

from devtools.models import RANDOM_GPT2, RANDOM_LLAMA, build_tiny_llama, build_tiny_model
from services.llm.adapters import lora_batch, recycling
from services.llm.adapters.swapping import FREE_SLOTS, AdapterSwapper
from services.llm.engine.running_batch import RunningBatch

TARGETS = {RANDOM_LLAMA: ["q_proj", "v_proj", "o_proj", "down_proj"], RANDOM_GPT2: ["c_attn", "c_proj", "c_fc"]}
IDS = torch.tensor([[5, 17, 99, 4, 31], [8, 8, 250, 3, 9]])


def saved_adapter(folder, kind: str, rank: int, seed: int, targets: list[str], name: str, use_dora: bool = False):
    torch.manual_seed(seed)
    config = LoraConfig(r=rank, lora_alpha=3 * rank, target_modules=targets, init_lora_weights=False,
                        fan_in_fan_out=kind == RANDOM_GPT2, use_dora=use_dora)
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
    adapter, layers = recycling.read(paths[name]), recycling.layers_of(served, "slot")
    assert recycling.fits(layers, "slot", adapter)
    recycling.copy_into(layers, "slot", adapter)
    lora_batch.refresh("slot")
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
    layers = recycling.layers_of(served, "slot")
    assert not recycling.fits(layers, "slot", recycling.read(paths["wider"]))
    narrow = recycling.read(paths["narrow"])
    assert not recycling.fits(layers, "slot", dataclasses.replace(narrow, config={**narrow.config, "use_dora": True}))
    assert json.loads((paths["narrow"] / "adapter_config.json").read_text())["r"] == 4


def test_the_swapper_holds_a_fixed_set_of_slots_and_remakes_one_for_an_adapter_that_fits_none(adapters_on):
    """Slots made at the first load (LLM_MAX_LOADED_ADAPTERS + FREE_SLOTS, counted in the model's LoRA layers); a
    wider adapter remakes a free one in its shape, a DoRA one too (loaded by peft's state dict); each computes as
    peft loads it, alone and in a mixed decode step; with every slot in use a load is refused until one is let go."""
    folder, kind, paths = adapters_on
    base = AutoModelForCausalLM.from_pretrained(folder / kind)
    swapper = AdapterSwapper(base, RunningBatch(base, 0, str, use_adapter_names=False), None, max_loaded=1)
    dora = saved_adapter(folder, kind, 4, 5, TARGETS[kind], "dora", use_dora=True)
    narrow = swapper.load(recycling.read(paths["narrow"]))
    held = {name for module in base.modules() if isinstance(module, LoraLayer) for name in module.lora_A}
    assert len(held) == 1 + FREE_SLOTS
    wider, with_dora = swapper.load(recycling.read(paths["wider"])), swapper.load(recycling.read(dora))
    assert len({narrow, wider, with_dora}) == 3
    assert {name for module in base.modules() if isinstance(module, LoraLayer) for name in module.lora_A} == held
    for slot, path in ((narrow, paths["narrow"]), (wider, paths["wider"]), (with_dora, dora)):
        swapper.model.set_adapter(slot)
        torch.testing.assert_close(logits(swapper.model, IDS), own_way(folder, kind, path), rtol=1e-5, atol=1e-5)
    mixed = logits(swapper.model, IDS[:, :1], adapter_names=[wider, narrow])
    torch.testing.assert_close(mixed[:1], own_way(folder, kind, paths["wider"], IDS[:1, :1]), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(mixed[1:], own_way(folder, kind, paths["narrow"], IDS[1:, :1]), rtol=1e-5, atol=1e-5)
    with pytest.raises(recycling.NoFreeSlot):
        swapper.load(recycling.read(paths["fewer"]))
    swapper.unload(narrow)
    assert swapper.load(recycling.read(paths["fewer"])) == narrow

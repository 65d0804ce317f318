"""Adapters in the served forward's slots (services/llm/adapters/slots.py), on the tiny random Llama and GPT-2: one
copied into a slot computes what peft computes with it loaded its own way, alone and beside others in a mixed batch,
whatever its rank (a larger one widens the stacks) and on fewer layers than others; rsLoRA's scale is peft's; a slot
loaded again with other weights computes with them; the slots are a fixed set, and with every one in use a load is
refused until one is let go; LoRA variants the forward does not compute, and modules it does not have, are refused
with the reason."""
import dataclasses

import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

from devtools.models import RANDOM_GPT2, RANDOM_LLAMA, build_tiny_llama, build_tiny_model, save_random_lora
from services.llm.adapters import files
from services.llm.adapters.slots import FREE_SLOTS, AdapterSlots
from services.llm.endings import stop_at
from services.llm.engine.running_batch import RunningBatch
from services.llm.model.forward import serving_forward
from services.llm.request import NO_ADAPTER, Plan, Request

FIRST_LAYER = {RANDOM_LLAMA: ["q_proj"], RANDOM_GPT2: ["c_attn"]}
IDS = torch.tensor([[5, 17, 99, 4, 31], [8, 8, 250, 3, 9]])


@pytest.fixture(scope="module", params=[RANDOM_LLAMA, RANDOM_GPT2])
def adapters_on(request, tmp_path_factory):
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("slots")
    model = (build_tiny_llama if request.param == RANDOM_LLAMA else build_tiny_model)(folder / request.param)
    base = AutoModelForCausalLM.from_pretrained(model)
    return model, {
        "wide": save_random_lora(base, folder / "wide", 8, 1),
        "narrow": save_random_lora(base, folder / "narrow", 4, 2),
        "fewer": save_random_lora(base, folder / "fewer", 4, 3, targets=FIRST_LAYER[request.param]),
        "wider": save_random_lora(base, folder / "wider", 16, 4),
        "rslora": save_random_lora(base, folder / "rslora", 4, 5, use_rslora=True),
        "dora": save_random_lora(base, folder / "dora", 4, 6, use_dora=True)}


def own_way(model_folder, path, ids: torch.Tensor) -> torch.Tensor:
    """peft's logits after each row's last token with the adapter at `path` (None: the base model)."""
    model = AutoModelForCausalLM.from_pretrained(model_folder).eval()
    if path is not None:
        model = PeftModel.from_pretrained(model, str(path)).eval()
    with torch.inference_mode():
        return model(input_ids=ids).logits[:, -1]


def served(forward, slots: AdapterSlots, ids: torch.Tensor, names: list[str]) -> torch.Tensor:
    """The served forward's logits after each row's last token, each row under its slot."""
    attention = torch.ones_like(ids)
    with torch.inference_mode():
        return forward(ids, attention, attention.cumsum(-1) - 1, None, slots.rows(names))[1]


def test_each_row_computes_as_peft_loads_its_adapter_whatever_its_rank_and_layers(adapters_on):
    folder, paths = adapters_on
    forward = serving_forward(AutoModelForCausalLM.from_pretrained(folder).eval())
    slots = AdapterSlots(forward, None, max_loaded=4)
    order = ["narrow", "fewer", "wide", "wider", "rslora"]  # "wider" widens the stacks made at rank 8
    held = {name: slots.load(files.read(paths[name])) for name in order}
    for ids in (IDS, IDS[:, :1]):  # a prefill and a decode step's single token
        mix = [held["wider"], NO_ADAPTER, held["narrow"], held["fewer"], held["rslora"], held["wide"]]
        rows = ids[torch.arange(len(mix)) % 2]
        expected = torch.cat([own_way(folder, paths[name] if name != "base" else None, rows[i:i + 1])
                              for i, name in enumerate(["wider", "base", "narrow", "fewer", "rslora", "wide"])])
        torch.testing.assert_close(served(forward, slots, rows, mix), expected, rtol=1e-5, atol=1e-5)
        for name in order:  # a batch of one adapter alone takes another path: its slot's own A and B
            torch.testing.assert_close(served(forward, slots, ids, [held[name]] * 2),
                                       own_way(folder, paths[name], ids), rtol=1e-5, atol=1e-5)


def test_greedy_rows_under_different_adapters_decoded_together_make_the_tokens_they_make_alone(adapters_on):
    folder, paths = adapters_on
    forward = serving_forward(AutoModelForCausalLM.from_pretrained(folder).eval())
    slots = AdapterSlots(forward, None, max_loaded=2)
    first, second = slots.load(files.read(paths["narrow"])), slots.load(files.read(paths["wide"]))

    def rows():
        prompts = [[5, 17, 99, 4, 31, 6], [8, 8, 250], [77, 1, 2, 3, 4, 9, 10, 11], [40, 41]]
        return [Request(plan=Plan(prompt_ids=ids, lead="", max_new_tokens=10, mode="text", ending=stop_at(())),
                        slot=name)
                for ids, name in zip(prompts, [first, NO_ADAPTER, second, first])]

    def decode(groups):
        batch = RunningBatch(forward, 0, str)
        batch.adapters = slots
        for group in groups:
            batch.admit(group)
            while batch:
                batch.step()
        return [row.generated for group in groups for row in group]

    together = decode([rows()])
    assert together == decode([[row] for row in rows()]) and len({tuple(tokens) for tokens in together}) == 4


def test_slots_are_a_fixed_set_reused_with_their_new_weights(adapters_on):
    folder, paths = adapters_on
    forward = serving_forward(AutoModelForCausalLM.from_pretrained(folder).eval())
    slots = AdapterSlots(forward, None, max_loaded=1)
    loaded = [slots.load(files.read(paths[name])) for name in ("narrow", "wide", "fewer")]
    assert len(set(loaded)) == 1 + FREE_SLOTS == len(slots.names)
    with pytest.raises(files.NoFreeSlot):
        slots.load(files.read(paths["wider"]))
    slots.unload(loaded[0])
    assert slots.load(files.read(paths["wider"])) == loaded[0]  # the freed slot, now with other weights
    torch.testing.assert_close(served(forward, slots, IDS, [loaded[0], loaded[1]]),
                               torch.cat([own_way(folder, paths["wider"], IDS[:1]),
                                          own_way(folder, paths["wide"], IDS[1:])]), rtol=1e-5, atol=1e-5)


def test_what_the_forward_does_not_compute_is_refused_with_the_reason(adapters_on):
    folder, paths = adapters_on
    forward = serving_forward(AutoModelForCausalLM.from_pretrained(folder).eval())
    slots = AdapterSlots(forward, None, max_loaded=1)
    with pytest.raises(ValueError, match="DoRA"):
        slots.load(files.read(paths["dora"]))
    narrow = files.read(paths["narrow"])
    elsewhere = {key.replace("layers.0.", "layers.9.").replace("h.0.", "h.9."): tensor
                 for key, tensor in narrow.weights.items()}
    with pytest.raises(ValueError, match="does not take LoRA on"):
        slots.load(dataclasses.replace(narrow, weights=elsewhere))
    assert slots.load(narrow) in slots.names  # the refusals left every slot free

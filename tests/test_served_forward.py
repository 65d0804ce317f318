"""The served forward (services/llm/model/forward.py) held to transformers' logits, in float32 on the tiny random Llama
and GPT-2: our own forward for each family and transformers' own as the fallback serves it, rows under two random
LoRA adapters of different ranks (loaded into slots, services/llm/adapters/slots.py) and none, mixed in one batch,
prompts prefilled in chunks, rows joining mid-batch and starting from the prefix cache. Every logit vector the engine
computed, at every prefill chunk and decode step, is compared with what peft's model with that adapter (or
transformers' model alone) gives for the same tokens."""
import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

from devtools.models import RANDOM_GPT2, RANDOM_LLAMA, build_tiny_llama, build_tiny_model, save_random_lora
from services.llm.adapters import files
from services.llm.adapters.slots import AdapterSlots
from services.llm.endings import stop_at
from services.llm.engine.prefix_cache import BLOCK_TOKENS, PrefixCache
from services.llm.engine.running_batch import RunningBatch
from services.llm.model.forward import serving_forward
from services.llm.request import NO_ADAPTER, Plan, Request

ADAPTERS = {"narrow": (4, 1), "wide": (8, 2)}  # name: (rank, seed)


class Recording(RunningBatch):
    """A running batch that keeps every row's logits with the tokens they follow and the row's slot."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[tuple[list[int], str, torch.Tensor]] = []
        self.mixed_decode_steps = 0  # decode steps whose rows had two adapters and none

    def _forward(self, rows, input_ids, attention, cache):
        cache, logits = super()._forward(rows, input_ids, attention, cache)
        lengths = attention.sum(-1).tolist()
        for row, length, row_logits in zip(rows, lengths, logits):
            self.seen.append(((row.prompt_ids + row.generated)[:length], row.slot, row_logits.clone()))
        decoding = all(length > len(row.prompt_ids) for row, length in zip(rows, lengths))
        self.mixed_decode_steps += decoding and len({row.slot for row in rows}) == 3
        return cache, logits


@pytest.fixture(scope="module", params=[RANDOM_LLAMA, RANDOM_GPT2])
def family(request, tmp_path_factory):
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("served-forward") / request.param
    (build_tiny_llama if request.param == RANDOM_LLAMA else build_tiny_model)(folder)
    base = AutoModelForCausalLM.from_pretrained(folder).eval()
    paths = {name: save_random_lora(base, folder.parent / name, rank, seed) for name, (rank, seed) in ADAPTERS.items()}
    return folder, paths


def reference(folder, paths: dict, slots_by_name: dict, tokens: list[int], slot: str) -> torch.Tensor:
    """Transformers' (and peft's, under an adapter) logits after `tokens`, computed whole."""
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    name = next((name for name, held in slots_by_name.items() if held == slot), None)
    if name is not None:
        model = PeftModel.from_pretrained(model, str(paths[name])).eval()
    with torch.inference_mode():
        return model(input_ids=torch.tensor([tokens])).logits[0, -1]


def requests(slots_by_name: dict, passage: list[int]) -> list[Request]:
    """Prompts of different lengths, some starting with the same blocks, under each adapter and none."""
    names = [slots_by_name["narrow"], NO_ADAPTER, slots_by_name["wide"], slots_by_name["narrow"]]
    prompts = [passage + [7, 8, 9], passage[:20], passage + [11] * 9 + [3], list(range(40, 75))]
    return [Request(plan=Plan(prompt_ids=prompt, lead="", max_new_tokens=6, mode="text", ending=stop_at(())), slot=slot)
            for prompt, slot in zip(prompts, names)]


@pytest.mark.parametrize("native", [True, False], ids=["ours", "transformers"])
def test_every_logit_the_engine_computes_is_transformers_own(family, native):
    folder, paths = family
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    forward = serving_forward(model, native=native)
    assert forward.kind.startswith("ours" if native else "transformers")
    cache = PrefixCache(4096)
    slots = AdapterSlots(forward, cache, max_loaded=2)
    slots_by_name = {name: slots.load(files.read(path)) for name, path in paths.items()}
    batch = Recording(forward, 0, str, prefix_cache=cache, chunk_tokens=16)
    batch.adapters = slots
    passage = list(range(100, 100 + 2 * BLOCK_TOKENS + 5))
    first, second = requests(slots_by_name, passage), requests(slots_by_name, passage)
    batch.admit(first[:2])
    batch.step()
    batch.admit(first[2:])  # joining while the first are mid-prefill
    for _ in range(8):
        batch.step()
    batch.admit(second)  # mid-batch, their passages cached by the first
    while batch:
        batch.step()
    assert all(row.stop_reason == "length" for row in first + second)
    assert [row.generated for row in first] == [row.generated for row in second]
    assert all(row.cached_tokens for row in second)
    assert batch.mixed_decode_steps >= 5
    for tokens, slot, logits in batch.seen:
        torch.testing.assert_close(logits, reference(folder, paths, slots_by_name, tokens, slot), rtol=1e-5,
                                   atol=1e-5)

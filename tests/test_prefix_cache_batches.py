"""Decoding with the prefix cache on: greedy decoding on tiny GPT-2 and Llama models (rotary positions) makes exactly
the tokens it makes with the cache off, for rows that join a running batch with, without or beside cached prefixes, a
prompt the cache covers whole, under a bound small enough to evict, under LoRA adapters, and after an adapter's
weights change under the same name."""
import asyncio
import pathlib

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from devtools.models import (FACTS, RANDOM_GPT2, RANDOM_LLAMA, build_tiny_llama, build_tiny_model, greedy_continuation,
                             random_models_dir, save_random_lora)
from services.common import devices
from services.common.prompts import PREFIX, qa_prompt
from services.llm.adapters import files
from services.llm.adapters.slots import AdapterSlots
from services.llm.config import LlmConfig
from services.llm.engine.core import Engine
from services.llm.engine.prefix_cache import BLOCK_TOKENS, PrefixCache
from services.llm.engine.running_batch import RunningBatch
from services.llm.model.forward import serving_forward
from services.llm.request import NO_ADAPTER, Plan, Request


@pytest.fixture(scope="module", params=[RANDOM_GPT2, RANDOM_LLAMA])
def model_and_tokenizer(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp("prefix") / request.param
    (build_tiny_llama if request.param == RANDOM_LLAMA else build_tiny_model)(folder)
    torch.set_num_threads(1)
    return AutoModelForCausalLM.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)


def squad_shaped(tokenizer, max_new_tokens: int = 16) -> list[Request]:
    """Questions on two passages, interleaved, then the first prompt's whole cached blocks as a prompt of its own."""
    encode = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    passages = [" ".join(c for _, c, _ in FACTS) * 2, " ".join(c for _, c, _ in reversed(FACTS)) * 3]
    prompts = [encode(qa_prompt(question, passages[i % 2])) + encode(f" {PREFIX}")
               for i, (question, _, _) in enumerate(FACTS * 2)]
    prompts.append(prompts[0][:len(prompts[0]) // BLOCK_TOKENS * BLOCK_TOKENS])
    return [Request(plan=Plan(prompt_ids=ids, lead=PREFIX, max_new_tokens=max_new_tokens - 3 * (i % 3)))
            for i, ids in enumerate(prompts)]


def decode_joining(model, tokenizer, rows: list[Request], prefix_cache: PrefixCache | None,
                   joins: dict[int, slice], chunk_tokens: int = 0) -> list[list[int]]:
    """Decodes `rows`, admitting joins[step] at that step into the running batch."""
    batch = RunningBatch(serving_forward(model), tokenizer.eos_token_id, tokenizer.decode,
                         prefix_cache=prefix_cache, chunk_tokens=chunk_tokens)
    step = 0
    while step <= max(joins) or batch:
        if step in joins:
            batch.admit(rows[joins[step]])
        batch.step()
        step += 1
    return [row.generated for row in rows]


# The first passage's first question alone; then a group that mixes a hit with a miss on the second passage; one
# that arrives beside both; then the rest, including a prompt the cache covers whole.
JOINS = {0: slice(0, 1), 2: slice(1, 3), 5: slice(3, 4), 9: slice(4, None)}


# Chunks of 5 tokens: prompts of 110 to 153 tokens take 22 to 31 steps, every later row joins while others are
# mid-prefill, and chunks end inside blocks; of 16: a row that starts from a cached prefix starts its first chunk at
# the prefix's boundary, and every chunk adds whole blocks to the cache.
@pytest.mark.parametrize("chunk_tokens", [0, 5, 16])
@pytest.mark.parametrize("bound", [4096, 48])  # 48 tokens: less than one passage, evicting all the time
def test_greedy_tokens_are_the_same_with_the_cache_on_and_off_in_joined_batches(model_and_tokenizer, bound,
                                                                                chunk_tokens):
    model, tokenizer = model_and_tokenizer
    off = decode_joining(model, tokenizer, squad_shaped(tokenizer), None, JOINS)
    assert off[:3] == [greedy_continuation(model, tokenizer, row.prompt_ids, row.max_new_tokens)
                       for row in squad_shaped(tokenizer)[:3]]
    if chunk_tokens:
        assert decode_joining(model, tokenizer, squad_shaped(tokenizer), None, JOINS, chunk_tokens) == off
    cache = PrefixCache(bound)
    rows = squad_shaped(tokenizer)
    assert decode_joining(model, tokenizer, rows, cache, JOINS, chunk_tokens) == off
    assert cache.tokens <= bound
    reused = [row.cached_tokens for row in rows]
    if bound == 4096 and not chunk_tokens:
        assert reused[0] == reused[1] == 0 and all(reused[2:])  # every later question found its passage
        assert reused[-1] == len(rows[-1].prompt_ids) - 1  # a prompt cached whole: all but its last token
    elif bound == 4096:  # the first passage was still being prefilled when its second question came
        assert reused[0] == reused[1] == 0 and any(reused[2:])
    else:
        assert max(reused) <= bound


def test_a_prompt_finds_the_blocks_of_one_still_being_prefilled(model_and_tokenizer):
    """Each chunk's whole blocks go into the cache at once: a second question on a passage that arrives while the
    first is mid-prefill starts from what is done, and both answer as they would alone."""
    model, tokenizer = model_and_tokenizer
    first, second = [squad_shaped(tokenizer)[i] for i in (0, 2)]  # one passage
    alone = [greedy_continuation(model, tokenizer, row.prompt_ids, row.max_new_tokens) for row in (first, second)]
    batch = RunningBatch(serving_forward(model), tokenizer.eos_token_id, tokenizer.decode,
                         prefix_cache=PrefixCache(4096), chunk_tokens=BLOCK_TOKENS)
    batch.admit([first])
    for _ in range(3):
        batch.step()
    assert batch.prefilling.computed(first) == 3 * BLOCK_TOKENS < len(first.prompt_ids)
    batch.admit([second])
    assert second.cached_tokens == 3 * BLOCK_TOKENS
    assert batch.prefilling.next_group().rows == [second]  # it starts from a cached prefix: it goes first
    while batch:
        batch.step()
    assert [first.generated, second.generated] == alone


def test_rows_under_different_adapters_never_share_cached_prefixes(model_and_tokenizer, tmp_path):
    base, tokenizer = model_and_tokenizer
    forward = serving_forward(base)

    def decode(prefix_cache):
        slots = AdapterSlots(forward, prefix_cache, max_loaded=2)
        names = [slots.load(files.read(save_random_lora(base, tmp_path / f"v{seed}", 4, seed))) for seed in (1, 2)]
        # One passage throughout: the first three rows could each reuse the one before but for the adapter.
        rows = [squad_shaped(tokenizer)[i] for i in (0, 2, 4, 6)]
        for row, adapter in zip(rows, [names[0], names[1], NO_ADAPTER, names[0]]):
            row.slot = adapter
        batch = RunningBatch(forward, tokenizer.eos_token_id, tokenizer.decode, prefix_cache=prefix_cache)
        batch.adapters = slots
        for row in rows:
            batch.admit([row])
            while batch:
                batch.step()
        return rows

    cache = PrefixCache(4096)
    with_cache, without = decode(cache), decode(None)
    assert [row.generated for row in with_cache] == [row.generated for row in without]
    assert [bool(row.cached_tokens) for row in with_cache] == [False, False, False, True]
    assert len({tuple(row.generated) for row in without[:3]}) == 3  # the adapters do change the answer


def test_an_adapter_reloaded_under_the_same_name_is_never_answered_from_its_old_keys(tmp_path):
    """The engine end to end: a request under adapter "rl" fills the cache; "rl" is deleted and other weights are
    loaded under the same name; the same prompt then decodes what those weights decode with no cache at all."""
    from peft import PeftModel

    models = random_models_dir(tmp_path)
    folder = models / RANDOM_GPT2
    tokenizer = AutoTokenizer.from_pretrained(folder)
    versions = [save_random_lora(AutoModelForCausalLM.from_pretrained(folder), tmp_path / f"v{seed}", 4, seed)
                for seed in (1, 2, 3)]
    prompt = squad_shaped(tokenizer)[0].prompt_ids

    def expected(version: pathlib.Path) -> list[int]:
        model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(folder), str(version)).eval()
        return greedy_continuation(model, tokenizer, prompt, 12)

    async def scenario() -> list[list[int]]:
        config = LlmConfig(base_model=str(folder), models_dir=models, max_batch_size=8, max_batch_tokens=8192,
                           max_queued=8, batch_window_ms=0, prefill_chunk_tokens=0, torch_threads=1,
                           prefix_cache_tokens=4096)
        engine = Engine(config, devices.resolve("cpu", "float32", "LLM"))
        assert await engine.load()
        answers = []
        for version, other in ((versions[0], versions[2]), (versions[1], None)):
            rl = await engine.load_adapter(files.read(version))
            for _ in range(2):  # the second finds the first's prefix
                answers.append((await engine.submit(Request(plan=Plan(prompt_ids=prompt, lead="", max_new_tokens=12),
                                                            slot=rl))).generated)
            if other is not None:  # another adapter in, then rl's slot free again: the next version may take it
                await engine.load_adapter(files.read(other))
                await engine.unload_adapter(rl)
        return answers

    first, first_again, second, second_again = asyncio.run(scenario())
    assert first == first_again == expected(versions[0])
    assert second == second_again == expected(versions[1]) != first

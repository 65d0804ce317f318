"""The prefix cache itself (services/llm/engine/prefix_cache.py): blocks matched from the prompt's start under the same
adapter only, least recently used evicted under the bound with a prefix's tail before its head, blocks keyed by a
chained hash, and the prefill groups it shapes. Decoding with it is test_prefix_cache_batches.py."""
import torch

from services.llm.engine.prefilling import Prefilling
from services.llm.engine.prefix_cache import PrefixCache
from services.llm.request import NO_ADAPTER, Plan, Request

BLOCK = 4


def columns(ids: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Two layers of made-up keys and values, [heads, tokens, dim], each column holding its token id."""
    column = torch.tensor(ids, dtype=torch.float32)[None, :, None].expand(2, -1, 3)
    return [(column.clone(), -column.clone()) for _ in range(2)]


def test_the_longest_cached_run_of_whole_blocks_is_reused_leaving_the_last_token_to_prefill():
    cache = PrefixCache(max_tokens=100, block_tokens=BLOCK)
    stored = list(range(1, 11))  # two whole blocks and two tokens
    cache.store("a", stored, columns(stored))
    assert cache.tokens == 8
    prefix = cache.longest_prefix("a", stored[:7] + [99, 98, 97])
    assert prefix.length == 4 and prefix.layers[1][0][0, :, 0].tolist() == [1, 2, 3, 4]
    assert prefix.layers[1][1][1, :, 2].tolist() == [-1, -2, -3, -4]
    assert cache.longest_prefix("a", stored + [11, 12]).length == 8
    whole = cache.longest_prefix("a", stored[:8])  # the whole prompt is cached: its last token is prefilled
    assert whole.length == 7 and whole.layers[0][0][0, :, 0].tolist() == [1, 2, 3, 4, 5, 6, 7]
    assert cache.longest_prefix("a", [0] + stored) is None  # matched from the start only
    assert cache.longest_prefix("a", stored[:4]).length == 3


def test_eviction_keeps_the_bound_and_takes_the_least_recently_used_tail_first():
    cache = PrefixCache(max_tokens=16, block_tokens=BLOCK)
    first, second, third = list(range(12)), list(range(100, 112)), list(range(200, 212))
    cache.store("a", first, columns(first))
    cache.store("a", second, columns(second))
    assert cache.tokens == 16
    assert cache.longest_prefix("a", first + [0]).length == 4  # its last two blocks went, its first stayed
    cache.store("a", third, columns(third))  # first's head was just used: second's blocks go before it
    assert cache.tokens <= 16
    assert cache.longest_prefix("a", first + [0]).length == 4
    assert cache.longest_prefix("a", second + [0]) is None
    assert cache.longest_prefix("a", third + [0]).length == 12
    cache.store("a", list(range(300, 340)), columns(list(range(300, 340))))  # longer than the bound by itself
    assert cache.tokens <= 16


def test_blocks_are_reused_under_their_own_adapter_only_and_forgotten_with_it():
    cache = PrefixCache(max_tokens=100, block_tokens=BLOCK)
    ids = list(range(9))
    cache.store("sft_1", ids, columns(ids))
    cache.store(NO_ADAPTER, ids, columns(ids))
    assert cache.longest_prefix("sft_2", ids) is None
    assert cache.longest_prefix("sft_1", ids).length == 8
    cache.forget("sft_1")
    assert cache.longest_prefix("sft_1", ids) is None and cache.longest_prefix(NO_ADAPTER, ids).length == 8
    assert cache.tokens == 8


def test_a_block_is_keyed_by_a_chained_hash_of_the_blocks_before_it():
    """Each key is the adapter and a fixed-size digest (a long prompt's keys cost time in proportion to its length,
    not its square), and a block's key depends on every token before it: a prompt that differs in its first token
    shares no block with another."""
    cache = PrefixCache(max_tokens=10_000, block_tokens=BLOCK)
    ids = list(range(4000))
    keys = cache._keys("a", ids)
    assert len(keys) == 1000 and {len(digest) for _, digest in keys} == {16}
    assert cache._keys("a", ids[:8]) == keys[:2]
    assert not set(cache._keys("a", [99] + ids[1:])) & set(keys)
    assert cache._keys("a", ids[4:8]) != keys[1:2]  # the same block's tokens after other tokens: another key
    cache.store("a", ids[:12], columns(ids[:12]))
    assert cache.longest_prefix("a", ids[:4] + [7, 7, 7, 7] + ids[8:12] + [1]).length == 4


def test_each_step_prefills_one_group_within_the_chunk_budget_rows_from_a_cached_prefix_first():
    cache = PrefixCache(max_tokens=100, block_tokens=BLOCK)
    passage = list(range(1, 21))
    cache.store(NO_ADAPTER, passage, columns(passage))
    miss, long_miss = Request(plan=Plan(prompt_ids=list(range(100, 130)), lead="", max_new_tokens=4)), \
        Request(plan=Plan(prompt_ids=list(range(200, 300)), lead="", max_new_tokens=4))
    hits = [Request(plan=Plan(prompt_ids=passage + list(range(50, 50 + extra)), lead="", max_new_tokens=4))
            for extra in (3, 8, 9, 1)]
    prefilling = Prefilling(chunk_tokens=24, prefix_cache=cache)
    for row in (miss, long_miss, *hits):
        prefilling.add(row)
    assert [row.cached_tokens for row in hits] == [20] * 4
    # The hits, first come first served while rows x width stays within 24: not the third (3 x 9), nor the fourth
    # past it.
    group = prefilling.next_group()
    assert group.rows == hits[:2] and [len(piece) for piece in group.pieces] == [3, 8]
    for row in hits:
        prefilling.rows.remove(row)  # as if prefilled
    group = prefilling.next_group()  # the first miss alone: two of them would be 2 x 24 wide
    assert group.rows == [miss] and group.pieces == [miss.prompt_ids[:24]]
    whole = Prefilling(chunk_tokens=0, prefix_cache=None)
    for row in (miss, long_miss):
        whole.add(row)
    assert whole.next_group().pieces == [miss.prompt_ids, long_miss.prompt_ids]  # 0: every waiting row, whole

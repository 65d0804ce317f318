"""What finding a prompt's blocks in the prefix cache costs (services/llm/engine/prefix_cache.py): the chained-hash
keys it makes and looks up now, against the keys it made before (the adapter and every token id from the prompt's
start to the block's end, so a long prompt's keys cost the square of its length).

    python bench/bench_prefix_keys.py
"""
import time

from services.llm.engine.prefix_cache import BLOCK_TOKENS, PrefixCache


def whole_prefix_keys(adapter: str, ids: list[int]) -> list[tuple]:
    ids = tuple(ids)
    return [(adapter, ids[:end]) for end in range(BLOCK_TOKENS, len(ids) + 1, BLOCK_TOKENS)]


def milliseconds(make_keys, ids: list[int], blocks: dict, reps: int = 5) -> float:
    started = time.perf_counter()
    for _ in range(reps):
        [key in blocks for key in make_keys("a", ids)]
    return (time.perf_counter() - started) / reps * 1000


def main() -> None:
    cache, blocks = PrefixCache(4096), {}
    for tokens in (256, 1024, 4096, 16384):
        ids = list(range(tokens))
        before, now = milliseconds(whole_prefix_keys, ids, blocks), milliseconds(cache._keys, ids, blocks)
        print(f"{tokens:6} tokens: keyed by the whole prefix {before:7.2f} ms, chained hash {now:5.2f} ms "
              f"({now / before:.2f}x)")


if __name__ == "__main__":
    main()

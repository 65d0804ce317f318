"""The running batch's KV cache (services/llm/engine/kv_cache.py) against transformers' DynamicCache: the time of one
greedy decode step of a batch of rows already prefilled, on a GPT-2-size model (GPT2Config() defaults, random
weights).

    python bench/bench_kv_cache.py [--shapes 1x300,4x300,8x300,8x600] [--steps 32] [--reps 3] [--threads 1]

For each shape (rows x prompt tokens) both caches decode the same prompts for --steps steps; each figure is the best
of --reps interleaved runs. Prints ms a step, the ratio RoomyCache / DynamicCache, and whether the tokens are equal.
"""
import argparse
import time

import torch
from transformers import DynamicCache, GPT2Config, GPT2LMHeadModel

from services.llm.engine.kv_cache import RoomyCache


def decode(model, prompts: torch.Tensor, cache, steps: int) -> tuple[float, list[int]]:
    """Seconds a step over `steps` greedy steps after prefilling `prompts` into `cache`, and the last tokens."""
    attention = torch.ones_like(prompts)
    with torch.inference_mode():
        output = model(input_ids=prompts, attention_mask=attention, cache=cache, use_cache=True, logits_to_keep=1)
        tokens = output.logits[:, -1].argmax(-1, keepdim=True)
        started = time.perf_counter()
        for _ in range(steps):
            attention = torch.cat([attention, attention.new_ones(len(prompts), 1)], dim=-1)
            output = model(input_ids=tokens, attention_mask=attention, position_ids=attention.sum(-1, keepdim=True) - 1,
                           cache=output.cache, use_cache=True, logits_to_keep=1)
            tokens = output.logits[:, -1].argmax(-1, keepdim=True)
    return (time.perf_counter() - started) / steps, tokens.flatten().tolist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", default="1x300,4x300,8x300,8x600", help="rows x prompt tokens, comma-separated")
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config()).eval()
    print(f"GPT2Config() random weights, {args.steps} greedy steps, torch threads {args.threads}")
    for shape in args.shapes.split(","):
        rows, width = map(int, shape.split("x"))
        prompts = torch.randint(0, model.config.vocab_size, (rows, width))
        best = {"DynamicCache": float("inf"), "RoomyCache": float("inf")}
        tokens = {}
        for _ in range(args.reps):
            for name, make in (("DynamicCache", DynamicCache), ("RoomyCache", RoomyCache)):
                seconds, tokens[name] = decode(model, prompts, make(), args.steps)
                best[name] = min(best[name], seconds)
        print(f"{rows} rows x {width} tokens: DynamicCache {best['DynamicCache'] * 1000:.1f} ms/step, RoomyCache "
              f"{best['RoomyCache'] * 1000:.1f} ms/step, ratio {best['RoomyCache'] / best['DynamicCache']:.2f}, "
              f"same tokens: {tokens['RoomyCache'] == tokens['DynamicCache']}", flush=True)


if __name__ == "__main__":
    main()

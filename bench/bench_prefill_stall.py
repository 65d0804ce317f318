"""A long prompt arriving while rows decode, in process (the service's running batch, GPT-2 size with random weights,
one torch thread): the longest wait of the decoding rows between two of their tokens, and the newcomer's time to
first token, with its prompt prefilled whole or in chunks (LLM_PREFILL_CHUNK_TOKENS, services/llm/engine/prefilling.py).

    python bench/bench_prefill_stall.py [--chunks 0,128,256] [--prompt-tokens 960] [--rows 4] [--reps 2]

The decoding rows (200-token prompts) are prefilled before the clock starts; the long prompt arrives at their third
step. The chunk sizes take turns, --reps times each; the table has each one's medians.
"""
import argparse
import pathlib
import random
import statistics
import tempfile
import time

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from devtools.models import build_gpt2_size_model
from services.llm.engine.running_batch import RunningBatch
from services.llm.model.forward import serving_forward
from services.llm.request import Plan, Request


def stall(model, tokenizer, chunk_tokens: int, rows: int, prompt_tokens: int) -> tuple[float, float, float]:
    """(longest gap between two tokens of the decoding rows, their median gap, the newcomer's TTFT) in seconds."""
    rng = random.Random(0)
    prompt = lambda length: [rng.randrange(1000, 2000) for _ in range(length)]  # noqa: E731
    decoding = [Request(plan=Plan(prompt_ids=prompt(200), lead="", max_new_tokens=48)) for _ in range(rows)]
    newcomer = Request(plan=Plan(prompt_ids=prompt(prompt_tokens), lead="", max_new_tokens=4))
    batch = RunningBatch(serving_forward(model), tokenizer.eos_token_id, tokenizer.decode)
    batch.admit(decoding)
    batch.prefill()  # whole, before the clock starts
    batch.prefilling.chunk_tokens = chunk_tokens
    watched, token_times, step = decoding[0], [], 0
    while not watched.done:
        if step == 2:
            batch.admit([newcomer])
            arrived = time.perf_counter()
        made = len(watched.generated)
        batch.step()
        if len(watched.generated) > made:
            token_times.append(time.perf_counter())
        step += 1
    while batch:
        batch.step()
    gaps = [later - earlier for earlier, later in zip(token_times, token_times[1:])]
    return max(gaps), statistics.median(gaps), newcomer.first_token_at - arrived


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", default="0,128,256", help="LLM_PREFILL_CHUNK_TOKENS values; 0: whole prompts")
    parser.add_argument("--prompt-tokens", type=int, default=960, help="the newcomer's prompt (GPT-2's window: 1024)")
    parser.add_argument("--rows", type=int, default=4, help="rows decoding when it arrives")
    parser.add_argument("--reps", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    chunks = [int(chunk) for chunk in args.chunks.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-prefill-stall-") as tmp:
        folder = build_gpt2_size_model(pathlib.Path(tmp) / "gpt2-size")
        model, tokenizer = AutoModelForCausalLM.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)
        results: dict[int, list[tuple[float, float, float]]] = {chunk: [] for chunk in chunks}
        for _ in range(args.reps):
            for chunk in chunks:
                results[chunk].append(stall(model, tokenizer, chunk, args.rows, args.prompt_tokens))
                print(f"chunk {chunk}: longest gap {results[chunk][-1][0]:.2f} s, newcomer TTFT "
                      f"{results[chunk][-1][2]:.2f} s", flush=True)
    print(f"\nA {args.prompt_tokens}-token prompt arriving while {args.rows} rows decode (GPT-2 size, medians of "
          f"{args.reps})\n\n| chunk tokens | decoding rows' longest gap s | their median gap s | newcomer TTFT s |\n"
          "|---|---|---|---|")
    for chunk, runs in results.items():
        longest, median, ttft = (statistics.median(run[i] for run in runs) for i in range(3))
        print(f"| {chunk or 'whole'} | {longest:.2f} | {median:.2f} | {ttft:.2f} |")


if __name__ == "__main__":
    main()

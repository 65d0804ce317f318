"""Serving benchmark for any OpenAI-compatible server (ours through Envoy, llama.cpp's llama-server, vLLM...), measuring
what `vllm bench serve` measures, with streamed chat completions.

    python bench/bench_serving.py --url http://127.0.0.1:8080 --model base --concurrency 1,8
    python bench/bench_serving.py --url http://127.0.0.1:8081 --model smollm2 --rates 0.5,1 --requests 200
    python bench/bench_serving.py --url ... --workload mixed-adapters --adapters base,sft,rl
    python bench/bench_serving.py --url ... --workload mixed-adapters --adapters base,sft,rl --lora-ids sft=0,rl=1

Per request: TTFT (time to the first streamed text), TPOT (time per output token after the first), ITL (every gap
between two streamed pieces), end-to-end latency. Per level: p50/p90/p99 of each, requests/s, output tokens/s, and
goodput (requests/s meeting every SLO given with --slo-ttft, --slo-tpot, --slo-e2e; all requests when none is given).

Levels: closed loop (`--concurrency`: that many clients, each sending its next request when its last one ends) and
open loop (`--rates`: requests/s arriving as a Poisson process, or gamma-distributed gaps with `--burstiness` < 1 for
bursts, whatever the server's state), `--requests` requests each.

Workloads (`--workload`; every level draws prompts of its own, so no server answers a level from its prompt cache):
  squad           a passage of the shipped SQuAD train slice and one of its questions (about 250 tokens with the chat
                  template) as a plain chat message, "PASSAGE\\n\\nQuestion: ...": not textgen's own QA form
                  ("Context: ...\\nQuestion: ..."), which holds an adapter's answer to the seed's format, so that
                  every server generates freely;
  random          random stretches of the shipped corpus, --random-words words (uniform in LOW,HIGH);
  mixed-adapters  the squad prompts spread round-robin over --adapters (each one a `model` name; `base` is --model).
                  llama-server takes its adapters per request instead: --lora-ids sft=0,rl=1 sends `lora` with those
                  ids (start it with --lora FILE ... --lora-init-without-apply) and the base without one.

Output: one JSON line per level (to --out, else none) and a table on the terminal. `run_levels` is the same from
Python (bench/anchor.py compares two servers with it). The workloads are in devtools/serving_workloads.py, the
requests in devtools/serving_requests.py, the figures in bench/serving_metrics.py.
"""
import argparse
import asyncio
import dataclasses
import json
import pathlib
import sys

from serving_metrics import Slo, level_name, summarize, table
from devtools.serving_requests import Target, run_level
from devtools.serving_workloads import Workload


@dataclasses.dataclass(frozen=True)
class Plan:
    workload: str = "squad"
    concurrency: tuple[int, ...] = (1, 8)
    rates: tuple[float, ...] = ()
    requests: int = 16
    burstiness: float = 1.0
    adapters: tuple[str, ...] = ("base", "sft", "rl")
    random_words: tuple[int, int] = (50, 300)
    seed: int = 0
    warmup: int = 2  # requests sent first, not counted (a server's first request pays for lazy set-up)


def run_levels(target: Target, plan: Plan, slo: Slo = Slo(), label: str = "") -> list[dict]:
    """One summary per level of `plan` against `target`, each on prompts of its own (the same prompts for any target
    given the same plan)."""
    workload = Workload(plan.workload, list(plan.adapters), plan.seed, plan.random_words)
    asyncio.run(run_level(target, workload.take(plan.warmup), concurrency=1))
    rows = []
    levels = [("concurrency", c) for c in plan.concurrency] + [("rate", r) for r in plan.rates]
    for kind, value in levels:
        prompts = workload.take(plan.requests)
        if kind == "concurrency":
            results, seconds = asyncio.run(run_level(target, prompts, concurrency=value))
        else:
            results, seconds = asyncio.run(run_level(target, prompts, rate=value, burstiness=plan.burstiness,
                                                     seed=plan.seed))
        rows.append({"label": label, "url": target.url, "model": target.model, "workload": plan.workload,
                     kind: value, **summarize(results, seconds, slo)})
    return rows



def numbers(text: str, kind=float) -> tuple:
    return tuple(kind(part) for part in text.split(",") if part.strip())


def lora_ids(text: str) -> dict[str, int]:
    try:
        return {name: int(number) for name, number in (pair.split("=") for pair in text.split(",") if pair)}
    except ValueError:
        raise SystemExit(f"--lora-ids {text!r}: write NAME=ID pairs, e.g. sft=0,rl=1") from None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--url", required=True, help="the server's root, e.g. http://127.0.0.1:8080")
    parser.add_argument("--model", required=True, help="the `model` for base requests")
    parser.add_argument("--label", default="", help="the server's name in the table and the JSON lines")
    parser.add_argument("--workload", default="squad", help="squad, random or mixed-adapters")
    parser.add_argument("--concurrency", default="1,8", help="closed-loop levels, e.g. 1,8 ('' for none)")
    parser.add_argument("--rates", default="", help="open-loop levels in requests/s, e.g. 0.5,1")
    parser.add_argument("--burstiness", type=float, default=1.0, help="1: Poisson arrivals; below 1: bursts")
    parser.add_argument("--requests", type=int, default=16, help="requests per level")
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--adapters", default="base,sft,rl", help="mixed-adapters: the models to spread over")
    parser.add_argument("--lora-ids", default="", help="llama-server: NAME=ID pairs sent as `lora` per request")
    parser.add_argument("--random-words", default="50,300", help="random: LOW,HIGH words per prompt")
    parser.add_argument("--slo-ttft", type=float, help="seconds")
    parser.add_argument("--slo-tpot", type=float, help="seconds")
    parser.add_argument("--slo-e2e", type=float, help="seconds")
    parser.add_argument("--api-key", default="", help="sent as Authorization: Bearer")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--out", type=pathlib.Path, help="append one JSON line per level here")
    args = parser.parse_args(argv)
    target = Target(args.url.rstrip("/"), args.model, args.max_tokens, lora_ids(args.lora_ids), args.api_key)
    plan = Plan(args.workload, numbers(args.concurrency, int), numbers(args.rates), args.requests, args.burstiness,
                tuple(numbers(args.adapters, str)), numbers(args.random_words, int), args.seed, args.warmup)
    if not plan.concurrency and not plan.rates:
        raise SystemExit("nothing to run: give --concurrency or --rates")
    rows = run_levels(target, plan, Slo(args.slo_ttft, args.slo_tpot, args.slo_e2e), args.label or args.url)
    if args.out:
        with args.out.open("a") as out:
            out.writelines(json.dumps(row) + "\n" for row in rows)
    print(table(rows))
    if any(row["failed"] for row in rows):
        for row in rows:
            for error in row.get("errors", []):
                print(f"{level_name(row)}: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()

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
Python (bench/anchor.py compares two servers with it).
"""
import argparse
import asyncio
import dataclasses
import json
import math
import pathlib
import random
import statistics
import sys
import time

import httpx

ROOT = pathlib.Path(__file__).resolve().parent.parent
SQUAD_TRAIN = ROOT / "data" / "squad_train_slice" / "train.json"
CORPUS = ROOT / "data" / "corpus" / "harbour.txt"


# --- workloads ----------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Prompt:
    text: str
    adapter: str = "base"


def squad_pairs(rng: random.Random) -> list[tuple[str, str]]:
    """(context, question) of every question in the shipped train slice, in an order of `rng`'s with one question
    of every passage before any passage's second, so that no passage comes back until all have been asked."""
    by_passage = [[(paragraph["context"], qa["question"]) for qa in paragraph["qas"]]
                  for article in json.loads(SQUAD_TRAIN.read_text())["data"] for paragraph in article["paragraphs"]]
    rng.shuffle(by_passage)
    rounds = max(len(questions) for questions in by_passage)
    return [questions[i] for i in range(rounds) for questions in by_passage if i < len(questions)]


class Workload:
    def __init__(self, kind: str, adapters: list[str], seed: int, random_words: tuple[int, int]) -> None:
        if kind not in ("squad", "random", "mixed-adapters"):
            raise SystemExit(f"--workload {kind!r}: use squad, random or mixed-adapters")
        self.kind, self.adapters, self.random_words = kind, adapters, random_words
        self.rng = random.Random(seed)
        self._squad = squad_pairs(self.rng) if kind != "random" else []
        self._words = CORPUS.read_text().split() if kind == "random" else []

    def take(self, count: int) -> list[Prompt]:
        """`count` prompts never given out before (fresh for each level)."""
        if self.kind == "random":
            prompts = []
            for _ in range(count):
                length = self.rng.randint(*self.random_words)
                start = self.rng.randrange(len(self._words) - length)
                prompts.append(Prompt(" ".join(self._words[start:start + length])))
            return prompts
        if len(self._squad) < count:
            raise SystemExit(f"the SQuAD slice has no {count} more fresh prompts: ask for fewer requests or levels")
        taken, self._squad = self._squad[:count], self._squad[count:]
        adapters = self.adapters if self.kind == "mixed-adapters" else ["base"]
        return [Prompt(f"{context}\n\nQuestion: {question}", adapters[i % len(adapters)])
                for i, (context, question) in enumerate(taken)]


# --- one request --------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Result:
    ok: bool
    ttft: float = math.nan
    e2e: float = math.nan
    itl: list[float] = dataclasses.field(default_factory=list)
    output_tokens: int = 0
    error: str = ""

    @property
    def tpot(self) -> float:
        return (self.e2e - self.ttft) / (self.output_tokens - 1) if self.output_tokens > 1 else math.nan


@dataclasses.dataclass(frozen=True)
class Target:
    url: str  # the server's root: .../v1/chat/completions is appended
    model: str  # what `model` says for the base
    max_tokens: int = 48
    lora_ids: dict[str, int] = dataclasses.field(default_factory=dict)  # llama-server's per-request adapters
    api_key: str = ""

    def body(self, prompt: Prompt) -> dict:
        body = {"messages": [{"role": "user", "content": prompt.text}], "max_tokens": self.max_tokens,
                "temperature": 0, "stream": True, "stream_options": {"include_usage": True}, "model": self.model}
        if prompt.adapter != "base":
            if self.lora_ids:
                body["lora"] = [{"id": self.lora_ids[prompt.adapter], "scale": 1.0}]
            else:
                body["model"] = prompt.adapter
        return body


async def send(client: httpx.AsyncClient, target: Target, prompt: Prompt) -> Result:
    started = time.perf_counter()
    result, last, pieces = Result(ok=False), None, 0
    try:
        async with client.stream("POST", f"{target.url}/v1/chat/completions", json=target.body(prompt)) as response:
            if response.status_code != 200:
                return Result(ok=False, error=f"HTTP {response.status_code}: {(await response.aread())[:200]!r}")
            async for line in response.aiter_lines():
                if not line.startswith("data:") or line.strip() == "data: [DONE]":
                    continue
                chunk = json.loads(line[5:])
                if chunk.get("error"):
                    return Result(ok=False, error=str(chunk["error"])[:200])
                if chunk.get("usage"):
                    result.output_tokens = chunk["usage"].get("completion_tokens", 0)
                deltas = [choice.get("delta") or {} for choice in chunk.get("choices") or []]
                text = "".join(delta.get("content") or "" for delta in deltas)
                if not text:
                    continue
                now = time.perf_counter()
                if last is None:
                    result.ttft = now - started
                else:
                    result.itl.append(now - last)
                last, pieces = now, pieces + 1
    except httpx.HTTPError as error:
        return Result(ok=False, error=f"{type(error).__name__}: {error}")
    result.e2e = time.perf_counter() - started
    result.output_tokens = result.output_tokens or pieces
    result.ok = last is not None
    result.error = "" if result.ok else "no text streamed"
    return result


# --- a level ------------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Slo:
    ttft: float | None = None
    tpot: float | None = None
    e2e: float | None = None

    def met(self, result: Result) -> bool:
        return result.ok and all(limit is None or not value > limit for limit, value in (
            (self.ttft, result.ttft), (self.tpot, result.tpot), (self.e2e, result.e2e)))


def gaps(rate: float, count: int, burstiness: float, rng: random.Random) -> list[float]:
    """Times between arrivals: exponential (Poisson arrivals) at burstiness 1, gamma with that shape otherwise (the
    same mean rate; below 1 arrivals come in bursts), as vllm bench serve draws them."""
    return [rng.gammavariate(burstiness, 1 / (rate * burstiness)) for _ in range(count)]


async def run_level(target: Target, prompts: list[Prompt], concurrency: int | None = None, rate: float | None = None,
                    burstiness: float = 1.0, seed: int = 0) -> tuple[list[Result], float]:
    """Every prompt sent, closed loop at `concurrency` or open loop at `rate`; the results and the seconds taken."""
    # A fresh connection per request: llama-server closes a kept-alive one after a few requests, and a request sent
    # on one it is closing fails; loopback connections cost well under a millisecond.
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
    headers = {"authorization": f"Bearer {target.api_key}"} if target.api_key else {}
    async with httpx.AsyncClient(timeout=httpx.Timeout(600, connect=10), limits=limits, headers=headers) as client:
        results: list[Result | None] = [None] * len(prompts)
        started = time.perf_counter()
        if concurrency:
            queue = iter(range(len(prompts)))

            async def client_loop() -> None:
                for index in queue:
                    results[index] = await send(client, target, prompts[index])

            await asyncio.gather(*(client_loop() for _ in range(concurrency)))
        else:
            tasks, at = [], 0.0
            for index, gap in enumerate(gaps(rate, len(prompts), burstiness, random.Random(seed))):
                at += gap
                await asyncio.sleep(max(0.0, started + at - time.perf_counter()))

                async def one(index: int = index) -> None:
                    results[index] = await send(client, target, prompts[index])

                tasks.append(asyncio.create_task(one()))
            await asyncio.gather(*tasks)
        return results, time.perf_counter() - started


def percentile(values: list[float], q: float) -> float:
    values = sorted(v for v in values if not math.isnan(v))
    if not values:
        return math.nan
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def summarize(results: list[Result], seconds: float, slo: Slo) -> dict:
    done = [r for r in results if r.ok]
    summary = {"requests": len(results), "failed": len(results) - len(done), "seconds": round(seconds, 3),
               "request_throughput": len(done) / seconds,
               "output_throughput": sum(r.output_tokens for r in done) / seconds,
               "mean_output_tokens": statistics.fmean(r.output_tokens for r in done) if done else math.nan,
               "goodput": sum(slo.met(r) for r in done) / seconds}
    for name, values in (("ttft", [r.ttft for r in done]), ("tpot", [r.tpot for r in done]),
                         ("itl", [gap for r in done for gap in r.itl]), ("e2e", [r.e2e for r in done])):
        clean = [v for v in values if not math.isnan(v)]
        summary[f"mean_{name}"] = statistics.fmean(clean) if clean else math.nan
        for q in (50, 90, 99):
            summary[f"p{q}_{name}"] = percentile(values, q)
    errors = sorted({r.error for r in results if not r.ok})
    if errors:
        summary["errors"] = errors[:5]
    return summary


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


def level_name(row: dict) -> str:
    return f"c={row['concurrency']}" if "concurrency" in row else f"{row['rate']}/s"


def table(rows: list[dict]) -> str:
    header = (f"{'server':22}{'level':>8}{'ok':>6}{'req/s':>7}{'out tok/s':>10}{'TTFT p50':>9}{'p90':>7}{'p99':>7}"
              f"{'TPOT p50':>9}{'ITL p50':>8}{'p99':>7}{'E2E p50':>8}{'p99':>7}{'goodput':>8}")
    lines = [header]
    for row in rows:
        ms = lambda key: f"{row[key] * 1000:.0f}" if not math.isnan(row[key]) else "-"  # noqa: E731
        s = lambda key: f"{row[key]:.2f}" if not math.isnan(row[key]) else "-"  # noqa: E731
        lines.append(f"{row['label'][:21]:22}{level_name(row):>8}{row['requests'] - row['failed']:>6}"
                     f"{row['request_throughput']:7.2f}{row['output_throughput']:10.1f}{s('p50_ttft'):>9}"
                     f"{s('p90_ttft'):>7}{s('p99_ttft'):>7}{ms('p50_tpot'):>9}{ms('p50_itl'):>8}{ms('p99_itl'):>7}"
                     f"{s('p50_e2e'):>8}{s('p99_e2e'):>7}{row['goodput']:8.2f}")
    lines.append("TTFT and E2E in seconds, TPOT and ITL in milliseconds; goodput: requests/s within the SLOs")
    return "\n".join(lines)


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

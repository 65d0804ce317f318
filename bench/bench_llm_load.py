"""Open-loop load on the llm service, one service per mode on the same arrivals.

    python bench/bench_llm_load.py [--workload mixed|squad|squad-shuffled] [--models gpt2-size,embedded] [--modes ...]
                                   [--duration 60] [--levels 0.5,0.8,1.0] [--new-tokens 32]

Models: gpt2-size (GPT2Config() with random weights, as bench_llm.py) and embedded (SmolLM2-135M-Instruct under
MODELS_DIR, made there first when missing). Workloads, QA requests asking for exactly --new-tokens tokens:
  mixed: each prompt a different stretch of the shipped corpus, 20 to 300 tokens (uniform), "What happened?";
  squad: SQuAD-shaped, as a service that has been running sees it: passages of 150 to 300 tokens, one new passage
         every 5 requests, each asked 5 different questions that arrive in random order among the next SPREAD
         requests, interleaved with those of the 4 or so other passages being asked about;
  squad-shuffled: the same passages and questions all shuffled together, so that nearly all of the first requests
         are a passage's first question (a cold start: the prefix cache has nothing yet) and the last are repeats.
Modes: continuous (the defaults: continuous batching, LLM_PREFIX_CACHE_TOKENS on), no-prefix-cache, static, none
(no batching), rows-16 and rows-32 (LLM_MAX_BATCH_SIZE; the others run --clients rows), kv-budget (a KV-token
budget alone: rows unbounded, LLM_MAX_BATCH_TOKENS=--kv-budget), chunked-N and no-prefix-cache-chunked-N
(LLM_PREFILL_CHUNK_TOKENS=N, with and without the prefix cache), whole-prefill (LLM_PREFILL_CHUNK_TOKENS=0).

Requests arrive as a Poisson process whatever the service's state (open loop: real traffic does not wait for
answers) and are sent through GenerateStream, so that time to first token (TTFT) is measured where a client sees it
(the first generated text after the lead, which is sent before admission), and so is the longest gap between two
pieces of text after it (a stall: the request's row waiting for others' prefills). First the capacity: closed loop,
--clients clients sending back to back to the first mode listed. Then, for each mode: requests alone (one at a time:
a cold passage's TTFT and latency, then another question on the same passage), and each load level (a share of that
capacity): throughput (completed requests/s over the whole run, the drain included), latency and TTFT percentiles.
Every phase draws passages of its own, so that no phase finds another's prompts in the prefix cache.
"""
import argparse
import concurrent.futures
import random
import re
import statistics
import tempfile
import threading
import time
import pathlib

import grpc
from textgen.v1 import llm_pb2, llm_pb2_grpc

from devtools.models import build_gpt2_size_model
from devtools.processes import start_service
from services.common import embedded_model
from services.common.config import ServiceConfig
from services.common.prompts import qa_prompt
from textgen.paths import SHIPPED_CORPUS

MODES = {"continuous": {},
         "no-prefix-cache": {"LLM_PREFIX_CACHE_TOKENS": "0"},
         "static": {"LLM_BATCHING": "static"},
         "none": {"LLM_MAX_BATCH_SIZE": "1"},
         "rows-16": {"LLM_MAX_BATCH_SIZE": "16"},
         "rows-32": {"LLM_MAX_BATCH_SIZE": "32"},
         "kv-budget": {"LLM_MAX_BATCH_SIZE": "1000"},  # LLM_MAX_BATCH_TOKENS from --kv-budget
         "whole-prefill": {"LLM_PREFILL_CHUNK_TOKENS": "0"}}
CHUNKED = re.compile(r"(no-prefix-cache-)?chunked-(\d+)")  # chunked-64, no-prefix-cache-chunked-64, ...
QUESTIONS = ["What happened?", "Who was there?", "Where did it take place?", "What did they say?",
             "Why did it happen?"]
ALONE_PASSAGES = 3
SPREAD = 25  # requests over which one passage's questions arrive (squad workload)


class Workload:
    """Requests drawn from the shipped corpus with the model's tokenizer; each phase gets its own random stream."""

    def __init__(self, kind: str, model_dir: pathlib.Path, seed: int) -> None:
        from transformers import AutoTokenizer

        self.kind, self.seed = kind, seed
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.words = SHIPPED_CORPUS.read_text().split()

    def _context(self, rng: random.Random, low: int, high: int, question: str) -> str:
        """A stretch of the corpus whose prompt with `question` is about `low` to `high` tokens long."""
        target, start = rng.randint(low, high), rng.randrange(len(self.words) - 400)
        context = []
        for word in self.words[start:start + 400]:
            if len(self.tokenizer(qa_prompt(question, " ".join(context + [word])))["input_ids"]) > target:
                break
            context.append(word)
        return " ".join(context)

    def phase(self, name: str, count: int) -> list[tuple[str, str]]:
        """`count` (question, context) pairs for the phase `name`."""
        rng = random.Random(f"{self.seed}-{name}")
        if self.kind == "mixed":
            return [("What happened?", self._context(rng, 20, 300, "What happened?")) for _ in range(count)]
        passages = [self._context(rng, 150, 300, "") for _ in range(-(-count // len(QUESTIONS)))]
        asked = [(question, passage) for passage in passages for question in QUESTIONS]
        if self.kind == "squad-shuffled":
            rng.shuffle(asked)
        else:  # passage j's questions at random places among requests 5j to 5j + SPREAD
            places = [len(QUESTIONS) * (i // len(QUESTIONS)) + rng.uniform(0, SPREAD) for i in range(len(asked))]
            asked = [pair for _, pair in sorted(zip(places, asked), key=lambda placed: placed[0])]
        return asked[:count]

    def alone(self) -> list[list[tuple[str, str]]]:
        """For each of a few fresh passages, two of its questions."""
        asked = self.phase("alone", ALONE_PASSAGES * len(QUESTIONS))
        by_passage: dict[str, list[tuple[str, str]]] = {}
        for question, passage in asked:
            by_passage.setdefault(passage, []).append((question, passage))
        return [pair[:2] for pair in by_passage.values()]


def request(asked: tuple[str, str], new_tokens: int) -> llm_pb2.LlmGenerateRequest:
    question, context = asked
    return llm_pb2.LlmGenerateRequest(question=question, context=context, max_new_tokens=new_tokens, adapter="base")


def settings_of(mode: str) -> dict[str, str]:
    if mode in MODES:
        return MODES[mode]
    chunked = CHUNKED.fullmatch(mode)
    if chunked is None:
        raise SystemExit(f"unknown mode {mode!r}: {', '.join(MODES)}, chunked-N or no-prefix-cache-chunked-N")
    return {**(MODES["no-prefix-cache"] if chunked[1] else {}), "LLM_PREFILL_CHUNK_TOKENS": chunked[2]}


def timed_stream(stub, message) -> tuple[float, float, int, float]:
    """(time to first generated text, latency, generated tokens, longest gap between two pieces of text after the
    first) of one streamed request."""
    started = time.perf_counter()
    first = last = None
    gap = 0.0
    for index, chunk in enumerate(stub.GenerateStream(message, timeout=600)):
        now = time.perf_counter()
        if index > 0 and chunk.text:
            if first is None:
                first = now - started
            else:
                gap = max(gap, now - last)
            last = now
        if chunk.HasField("final"):
            return first or now - started, now - started, chunk.final.generated_tokens, gap
    raise RuntimeError("stream ended without its final chunk")


def capacity(stub, asked: list[tuple[str, str]], clients: int, new_tokens: int, seconds: float) -> float:
    """Requests/s with `clients` clients sending back to back (closed loop)."""
    done, stop = [], time.perf_counter() + seconds

    def client(offset: int) -> None:
        i = offset
        while time.perf_counter() < stop:
            timed_stream(stub, request(asked[i % len(asked)], new_tokens))
            done.append(time.perf_counter())
            i += clients

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    return len(done) / (time.perf_counter() - started)


def alone(stub, pairs: list[list[tuple[str, str]]], new_tokens: int) -> dict:
    """Medians, one request at a time: a cold passage's TTFT and latency, then a second question on it (TTFT; the
    mixed workload has none)."""
    cold, warm, latency = [], [], []
    for first, *second in pairs:
        ttft, seconds, _, _ = timed_stream(stub, request(first, new_tokens))
        cold.append(ttft)
        latency.append(seconds)
        warm += [timed_stream(stub, request(asked, new_tokens))[0] for asked in second]
    return {"cold": statistics.median(cold), "warm": statistics.median(warm) if warm else float("nan"),
            "latency": statistics.median(latency)}


def arrivals(rate: float, duration: float, seed: int) -> list[float]:
    rng = random.Random(seed)
    times, t = [], rng.expovariate(rate)
    while t < duration:
        times.append(t)
        t += rng.expovariate(rate)
    return times


def open_loop(stub, asked: list[tuple[str, str]], times: list[float], new_tokens: int) -> dict:
    results, lock = [], threading.Lock()

    def send(index: int) -> None:
        measured = timed_stream(stub, request(asked[index], new_tokens))
        with lock:
            results.append(measured)

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(256) as pool:
        futures = []
        for index, at in enumerate(times):
            time.sleep(max(0.0, started + at - time.perf_counter()))
            futures.append(pool.submit(send, index))
        for future in futures:
            future.result()
    elapsed = time.perf_counter() - started
    ttft, latency, gaps = [r[0] for r in results], [r[1] for r in results], [r[3] for r in results]
    return {"requests": len(results), "throughput": len(results) / elapsed, "p50": percentile(latency, 50),
            "p99": percentile(latency, 99), "ttft50": percentile(ttft, 50), "ttft99": percentile(ttft, 99),
            "gap50": percentile(gaps, 50), "gap99": percentile(gaps, 99)}


def percentile(samples: list[float], q: int) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1]


def run_model(label: str, model_dir: pathlib.Path, models_dir: str, args) -> None:
    levels = [float(level) for level in args.levels.split(",")]
    workload = Workload(args.workload, model_dir, args.seed)
    pairs = workload.alone()
    base = {"LLM_BASE_MODEL": str(model_dir), "MODELS_DIR": models_dir, "LLM_TORCH_THREADS": str(args.threads),
            "LLM_MAX_BATCH_SIZE": str(args.clients), "LLM_MAX_QUEUED": "100000"}
    table: dict[tuple[float, str], dict] = {}
    by_mode: dict[str, dict] = {}
    cap, schedules = None, {}
    for mode in args.modes.split(","):
        settings = {**base, **settings_of(mode)}
        if mode == "kv-budget":
            settings["LLM_MAX_BATCH_TOKENS"] = str(args.kv_budget)
        with start_service("services.llm", settings, "LLM_PORT") as service, \
                grpc.insecure_channel(service.address) as channel:
            stub = llm_pb2_grpc.LlmServiceStub(channel)
            timed_stream(stub, request(workload.phase("warm-up", 1)[0], 4))
            if cap is None:
                cap = capacity(stub, workload.phase("capacity", 200), args.clients, args.new_tokens,
                               args.capacity_seconds)
                print(f"{label}: capacity (closed loop, {args.clients} clients, {mode}): {cap:.3f} req/s", flush=True)
                for level in levels:
                    times = arrivals(level * cap, args.duration, args.seed)
                    schedules[level] = (times, workload.phase(f"level-{level}", len(times)))
            by_mode[mode] = alone(stub, pairs, args.new_tokens)
            print(f"  {mode:>16} alone: TTFT {by_mode[mode]['cold']:.3f} s (second question on the passage "
                  f"{by_mode[mode]['warm']:.3f} s), latency {by_mode[mode]['latency']:.2f} s", flush=True)
            for level in levels:
                table[level, mode] = row = open_loop(stub, schedules[level][1], schedules[level][0], args.new_tokens)
                print(f"  {mode:>16} at {level:.0%}: {row['requests']} requests, {row['throughput']:.3f} req/s, "
                      f"latency p50 {row['p50']:.2f} s p99 {row['p99']:.2f} s, "
                      f"TTFT p50 {row['ttft50']:.2f} s p99 {row['ttft99']:.2f} s, "
                      f"longest gap p50 {row['gap50']:.2f} s p99 {row['gap99']:.2f} s", flush=True)
            status = stub.GetStatus(llm_pb2.GetLlmStatusRequest())
            if status.prefix_cache_lookups:
                print(f"  {mode:>16} prefix cache: {status.prefix_cache_hits}/{status.prefix_cache_lookups} hits, "
                      f"{status.prefix_cache_tokens}/{status.prefix_cache_max_tokens} tokens held", flush=True)
    report(label, cap, table, by_mode, args)


def report(label: str, cap: float, table: dict, by_mode: dict, args) -> None:
    print(f"\n{label}, {args.workload} workload, {args.new_tokens} new tokens, Poisson arrivals for "
          f"{args.duration:.0f} s per cell; capacity {cap:.3f} req/s\n")
    print("| load | mode | requests | throughput req/s | latency p50 / p99 s | TTFT p50 / p99 s | TTFT p99 / alone "
          "latency | longest gap p50 / p99 s |")
    print("|---|---|---|---|---|---|---|---|")
    for (level, mode), row in table.items():
        print(f"| {level:.0%} | {mode} | {row['requests']} | {row['throughput']:.3f} | {row['p50']:.2f} / "
              f"{row['p99']:.2f} | {row['ttft50']:.2f} / {row['ttft99']:.2f} | "
              f"{row['ttft99'] / by_mode[mode]['latency']:.2f} | {row['gap50']:.2f} / {row['gap99']:.2f} |")
    print("\n| mode | alone: TTFT cold s | TTFT second question s | ratio | latency s |\n|---|---|---|---|---|")
    for mode, row in by_mode.items():  # the mixed workload asks no second question (nan)
        print(f"| {mode} | {row['cold']:.3f} | {row['warm']:.3f} | {row['warm'] / row['cold']:.2f} | "
              f"{row['latency']:.2f} |")
    modes = {mode for _, mode in table}
    levels = {level for level, _ in table}
    # The cache on / off, each pair prefilling alike: the defaults, and each chunk size run both ways.
    pairs = [("continuous", "no-prefix-cache")] + [
        (mode, f"no-prefix-cache-{mode}") for mode in sorted(modes) if mode.startswith("chunked-")]
    for on_mode, off_mode in pairs:
        if 0.8 in levels and {on_mode, off_mode} <= modes:
            on, off = table[0.8, on_mode], table[0.8, off_mode]
            alone_on = by_mode[on_mode]
            print(f"\nat 80%, prefix cache on / off ({on_mode} / {off_mode}): latency p99 "
                  f"{on['p99'] / off['p99']:.2f} (target <= 0.6), throughput "
                  f"{on['throughput'] / off['throughput']:.2f} (target >= 1.0), TTFT p99 "
                  f"{on['ttft99'] / off['ttft99']:.2f}; alone, second question / cold TTFT "
                  f"{alone_on['warm'] / alone_on['cold']:.2f} (target <= 0.3)")
    for mode in sorted(modes):  # each chunk size, the cache on, against the defaults with the cache off and on
        chunked = CHUNKED.fullmatch(mode)
        if 0.8 not in levels or chunked is None or chunked[1]:
            continue
        for whole in ("no-prefix-cache", "continuous"):
            if whole in modes:
                on, off = table[0.8, mode], table[0.8, whole]
                print(f"at 80%, {mode} / {whole}: latency p99 {on['p99'] / off['p99']:.2f}, p50 "
                      f"{on['p50'] / off['p50']:.2f}, throughput {on['throughput'] / off['throughput']:.2f}, "
                      f"TTFT p99 {on['ttft99'] / off['ttft99']:.2f}, longest gap p99 {on['gap99'] / off['gap99']:.2f}")
    if 0.8 in levels and {"continuous", "static"} <= modes:
        cb, static = table[0.8, "continuous"], table[0.8, "static"]
        print(f"at 80%: TTFT p99 continuous/static {cb['ttft99'] / static['ttft99']:.2f} (target <= 0.5), "
              f"latency p99 {cb['p99'] / static['p99']:.2f} (target <= 0.8), "
              f"throughput {cb['throughput'] / static['throughput']:.2f} (target >= 1.0)")
    print(flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", choices=("mixed", "squad", "squad-shuffled"), default="mixed")
    parser.add_argument("--models", default="gpt2-size", help="comma-separated: gpt2-size, embedded")
    parser.add_argument("--duration", type=float, default=60, help="seconds of arrivals per load level and mode")
    parser.add_argument("--levels", default="0.5,0.8,1.0", help="shares of the measured capacity")
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--clients", type=int, default=8, help="closed-loop clients for the capacity; the rows of "
                                                                "every mode that does not set its own")
    parser.add_argument("--kv-budget", type=int, default=8192, help="LLM_MAX_BATCH_TOKENS of the kv-budget mode")
    parser.add_argument("--capacity-seconds", type=float, default=60)
    parser.add_argument("--threads", type=int, default=1, help="LLM_TORCH_THREADS")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--modes", default="continuous,static,none",
                        help="of " + ", ".join(MODES) + ", chunked-N, no-prefix-cache-chunked-N")
    args = parser.parse_args()
    for name in args.models.split(","):
        if name == "gpt2-size":
            with tempfile.TemporaryDirectory(prefix="bench-llm-load-") as tmp:
                run_model("GPT-2 size, random weights", build_gpt2_size_model(pathlib.Path(tmp) / "gpt2-size"), tmp,
                          args)
        elif name == "embedded":
            models_dir = ServiceConfig.from_env().models_dir
            run_model(embedded_model.NAME, embedded_model.ensure(models_dir, show_progress=True), str(models_dir),
                      args)
        else:
            parser.error(f"unknown model {name!r}: gpt2-size or embedded")


if __name__ == "__main__":
    main()

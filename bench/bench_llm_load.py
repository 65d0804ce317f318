"""Open-loop load on the llm service: continuous batching against static batching and no batching.

    python bench/bench_llm_load.py [--duration 60] [--levels 0.5,0.8,1.0] [--new-tokens 32]

The GPT-2-size model with random weights (as bench_llm.py). Requests arrive as a Poisson process, whatever the
service's state (open loop: real traffic does not wait for answers); each is a QA prompt of 20 to 300 tokens
(uniform) asking for exactly --new-tokens tokens, sent through GenerateStream so that time to first token is
measured where a client sees it (the first generated text after the lead, which is sent before admission).

First the capacity: closed loop, --clients clients sending back to back under continuous batching. Then, for each
load level (a share of that capacity) and each mode, the same arrival schedule (same seed): throughput (completed
requests/s over the whole run, the drain included), latency and time-to-first-token percentiles. Prints the table
and the targets at 80%.
"""
import argparse
import concurrent.futures
import random
import statistics
import tempfile
import threading
import time
import pathlib

import grpc
from textgen.v1 import llm_pb2, llm_pb2_grpc

from devtools.models import build_gpt2_size_model
from devtools.processes import start_service
from services.common.prompts import qa_prompt
from textgen.paths import SHIPPED_CORPUS

MODES = {"continuous": {"LLM_BATCHING": "continuous"},
         "static": {"LLM_BATCHING": "static"},
         "none": {"LLM_BATCHING": "continuous", "LLM_MAX_BATCH_SIZE": "1"}}


def prompts(model_dir: pathlib.Path, count: int, seed: int) -> list[llm_pb2.LlmGenerateRequest]:
    """QA requests whose prompts are 20 to 300 tokens long (uniform), from the shipped corpus."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    words = SHIPPED_CORPUS.read_text().split()
    rng = random.Random(seed)
    made = []
    for _ in range(count):
        target, start = rng.randint(20, 300), rng.randrange(len(words) - 400)
        context = []
        for word in words[start:start + 400]:
            if len(tokenizer(qa_prompt("What happened?", " ".join(context + [word])))["input_ids"]) > target:
                break
            context.append(word)
        made.append(" ".join(context))
    return made


def request(context: str, new_tokens: int) -> llm_pb2.LlmGenerateRequest:
    return llm_pb2.LlmGenerateRequest(question="What happened?", context=context, max_new_tokens=new_tokens,
                                      adapter="base")


def timed_stream(stub, message) -> tuple[float, float, int]:
    """(time to first generated text, latency, generated tokens) of one streamed request."""
    started = time.perf_counter()
    first = None
    for index, chunk in enumerate(stub.GenerateStream(message, timeout=600)):
        if index > 0 and first is None and chunk.text:
            first = time.perf_counter() - started
        if chunk.HasField("final"):
            return first or time.perf_counter() - started, time.perf_counter() - started, chunk.final.generated_tokens
    raise RuntimeError("stream ended without its final chunk")


def capacity(stub, contexts: list[str], clients: int, new_tokens: int, seconds: float) -> float:
    """Requests/s with `clients` clients sending back to back (closed loop)."""
    done, stop = [], time.perf_counter() + seconds

    def client(offset: int) -> None:
        i = offset
        while time.perf_counter() < stop:
            timed_stream(stub, request(contexts[i % len(contexts)], new_tokens))
            done.append(time.perf_counter())
            i += clients

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    return len(done) / (time.perf_counter() - started)


def open_loop(stub, contexts: list[str], rate: float, duration: float, new_tokens: int, seed: int) -> dict:
    rng = random.Random(seed)
    arrivals, t = [], rng.expovariate(rate)
    while t < duration:
        arrivals.append(t)
        t += rng.expovariate(rate)
    results, lock = [], threading.Lock()

    def send(index: int) -> None:
        measured = timed_stream(stub, request(contexts[index % len(contexts)], new_tokens))
        with lock:
            results.append(measured)

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(256) as pool:
        futures = []
        for index, at in enumerate(arrivals):
            time.sleep(max(0.0, started + at - time.perf_counter()))
            futures.append(pool.submit(send, index))
        for future in futures:
            future.result()
    elapsed = time.perf_counter() - started
    ttft, latency = [r[0] for r in results], [r[1] for r in results]
    return {"requests": len(results), "throughput": len(results) / elapsed, "p50": percentile(latency, 50),
            "p99": percentile(latency, 99), "ttft50": percentile(ttft, 50), "ttft99": percentile(ttft, 99)}


def percentile(samples: list[float], q: int) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=60, help="seconds of arrivals per load level and mode")
    parser.add_argument("--levels", default="0.5,0.8,1.0", help="shares of the measured capacity")
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--clients", type=int, default=8, help="closed-loop clients for the capacity (= batch size)")
    parser.add_argument("--capacity-seconds", type=float, default=60)
    parser.add_argument("--threads", type=int, default=1, help="LLM_TORCH_THREADS")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--modes", default=",".join(MODES), help="of " + ", ".join(MODES))
    args = parser.parse_args()
    levels = [float(level) for level in args.levels.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-llm-load-") as tmp:
        model_dir = build_gpt2_size_model(pathlib.Path(tmp) / "gpt2-size")
        contexts = prompts(model_dir, 200, args.seed)
        base = {"LLM_BASE_MODEL": str(model_dir), "MODELS_DIR": tmp, "LLM_TORCH_THREADS": str(args.threads),
                "LLM_MAX_BATCH_SIZE": str(args.clients), "LLM_MAX_QUEUED": "100000"}
        table: dict[tuple[float, str], dict] = {}
        cap = None
        for mode in args.modes.split(","):
            settings = MODES[mode]
            with start_service("services.llm", {**base, **settings}, "LLM_PORT") as service, \
                    grpc.insecure_channel(service.address) as channel:
                stub = llm_pb2_grpc.LlmServiceStub(channel)
                timed_stream(stub, request(contexts[0], 4))  # warm up
                if cap is None:
                    cap = capacity(stub, contexts, args.clients, args.new_tokens, args.capacity_seconds)
                    print(f"capacity (closed loop, {args.clients} clients, continuous batching): {cap:.3f} req/s",
                          flush=True)
                for level in levels:
                    table[level, mode] = open_loop(stub, contexts, level * cap, args.duration, args.new_tokens,
                                                   args.seed)
                    row = table[level, mode]
                    print(f"  {mode:>10} at {level:.0%}: {row['requests']} requests, {row['throughput']:.3f} req/s, "
                          f"latency p50 {row['p50']:.2f} s p99 {row['p99']:.2f} s, "
                          f"TTFT p50 {row['ttft50']:.2f} s p99 {row['ttft99']:.2f} s", flush=True)
    print(f"\nGPT-2 size, random weights, {args.new_tokens} new tokens, prompts 20-300 tokens, Poisson arrivals for "
          f"{args.duration:.0f} s per cell; capacity {cap:.3f} req/s\n")
    print("| load | mode | requests | throughput req/s | latency p50 s | latency p99 s | TTFT p50 s | TTFT p99 s |")
    print("|---|---|---|---|---|---|---|---|")
    for (level, mode), row in table.items():
        print(f"| {level:.0%} | {mode} | {row['requests']} | {row['throughput']:.3f} | {row['p50']:.2f} | "
              f"{row['p99']:.2f} | {row['ttft50']:.2f} | {row['ttft99']:.2f} |")
    if 0.8 in levels and {"continuous", "static"} <= {mode for _, mode in table}:
        cb, static = table[0.8, "continuous"], table[0.8, "static"]
        print(f"\nat 80%: TTFT p99 continuous/static {cb['ttft99'] / static['ttft99']:.2f} (target <= 0.5), "
              f"latency p99 {cb['p99'] / static['p99']:.2f} (target <= 0.8), "
              f"throughput {cb['throughput'] / static['throughput']:.2f} (target >= 1.0)")


if __name__ == "__main__":
    main()

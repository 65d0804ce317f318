"""The phases bench/bench_llm_load.py measures on one llm service: its capacity (closed loop), requests alone, and
an open-loop level of Poisson arrivals; each request streamed, so that its first token is timed where a client sees
it."""
import concurrent.futures
import random
import statistics
import threading
import time

from llm_load_workload import request


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

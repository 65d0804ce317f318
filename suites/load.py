"""A bounded mixed REST load through Envoy on loopback: bigram, LSTM, LLM QA and stream, status and job listing,
from a fixed number of clients for a fixed time, twice.

    python suites/load.py            # full: 8 clients, 60 s per run
    python suites/load.py --quick    # CI: 4 clients, 10 s per run

Fails (exit code 1) on any error, and when a service's resident memory grows from the end of the first run to the
end of the second by more than MEMORY_BOUND_MB (the first run warms every code path and cache up; a leak keeps
growing). Prints requests, errors and p50/p99 latency per route, and each service's memory after each run.
"""
import argparse
import collections
import concurrent.futures
import itertools
import pathlib
import statistics
import sys
import tempfile
import threading
import time

import httpx

from devtools.processes import start_system

MEMORY_BOUND_MB = 50
QA = {"question": "Who came into the harbour?", "context": "The ship came into the harbour at noon.",
      "max_new_tokens": 16}
ROUTES = [  # (method, path, JSON body); each route is reported as "METHOD path"
    ("POST", "/generate", {"start_word": "the", "length": 20}),
    ("POST", "/generate_with_rnn", {"start_word": "the captain", "length": 20}),
    ("POST", "/generate_with_llm", QA),
    ("POST", "/generate_with_llm/stream", QA),
    ("GET", "/llm/status", None),
    ("GET", "/llm/jobs", None),
]


def rss_mb(pid: int) -> float:
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run_load(url: str, clients: int, seconds: float, key: str) -> tuple[dict, list[str]]:
    latencies, errors, lock = collections.defaultdict(list), [], threading.Lock()
    stop = time.monotonic() + seconds
    routes = itertools.cycle(ROUTES)

    def client(offset: int) -> None:
        with httpx.Client(base_url=url, timeout=60, headers={"authorization": f"Bearer {key}"}) as http:
            for _ in range(offset):
                next(routes)
            while time.monotonic() < stop:
                method, path, body = next(routes)
                name = f"{method} {path}"
                started = time.perf_counter()
                try:
                    response = http.request(method, path, json=body)
                    ok = response.status_code == 200 and (not path.endswith("/stream") or '"final"' in
                                                          response.text.strip().splitlines()[-1])
                    failure = None if ok else f"{name}: {response.status_code} {response.text[:200]!r}"
                except httpx.HTTPError as error:
                    failure = f"{name}: {type(error).__name__} {error}"
                with lock:
                    latencies[name].append(time.perf_counter() - started)
                    if failure:
                        errors.append(failure)

    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    return latencies, errors


def percentile(samples: list[float], q: int) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1] if len(samples) > 1 else samples[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the CI size: 4 clients, 10 s per run")
    args = parser.parse_args()
    clients, seconds = (4, 10) if args.quick else (8, 60)
    memory, failures = [], []
    with tempfile.TemporaryDirectory(prefix="load-") as tmp, start_system(pathlib.Path(tmp) / "models") as system:
        for run in (1, 2):
            latencies, errors = run_load(system.gateway.url, clients, seconds, system.token)
            failures += errors
            memory.append({name: rss_mb(p.proc.pid) for name, p in system.services.items()})
            print(f"run {run}: {clients} clients for {seconds} s, "
                  f"{sum(map(len, latencies.values()))} requests, {len(errors)} errors")
            print(f"  {'route':32}{'requests':>9}{'p50 ms':>9}{'p99 ms':>9}")
            for method, path, _ in ROUTES:
                name = f"{method} {path}"
                samples = latencies[name]
                print(f"  {name:32}{len(samples):9}{1000 * percentile(samples, 50):9.1f}"
                      f"{1000 * percentile(samples, 99):9.1f}")
    growth = {name: memory[1][name] - memory[0][name] for name in memory[0]}
    print("resident memory MB after run 1 / run 2 (growth): " + ", ".join(
        f"{name} {memory[0][name]:.0f} / {memory[1][name]:.0f} ({growth[name]:+.0f})" for name in growth))
    for line in failures[:20]:
        print("  " + line)
    leaking = [name for name, grown in growth.items() if grown > MEMORY_BOUND_MB]
    if leaking:
        print(f"grew more than {MEMORY_BOUND_MB} MB between the runs: {', '.join(leaking)}")
    return 0 if not failures and not leaking else 1


if __name__ == "__main__":
    sys.exit(main())

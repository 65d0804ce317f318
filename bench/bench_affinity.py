"""Adapter affinity under Docker Compose: the llm service scaled to 2 behind the Envoy image, 20 published adapters
(random LoRA weights on the random tiny GPT-2 the compose check serves), LLM_MAX_LOADED_ADAPTERS held by each
replica, and clients asking /generate_with_llm for an adapter drawn uniformly at random. Run once with
LLM_ADAPTER_AFFINITY=off (least request over both replicas) and once with it on (a ring hash on the adapter), each
on fresh replicas; prints adapter loads per 1,000 requests, latency percentiles and how many adapters each replica
served. Needs `make images` (the Envoy configuration of each run is rendered here and mounted over the image's).

    python bench/bench_affinity.py                        # 20 adapters, 8 held, 8 clients, 1,000 requests a run
    python bench/bench_affinity.py --requests 2000 --held 4
"""
import argparse
import concurrent.futures
import json
import os
import pathlib
import random
import subprocess
import tempfile
import time

import httpx
import yaml

from devtools.compose_project import SERVICE_UID, Compose, compose_command, healthy
from devtools.images import docker, require_engine
from devtools.models import FACT_QUESTION, RANDOM_GPT2, build_tiny_model, publish_random_adapters
from devtools.processes import free_port, poll
from gateway import adapter_affinity, render
from gateway.targets import compose_target
from textgen.endpoints import ENDPOINTS

PROJECT = "textgen-affinity-bench"
BENCH_KEY = "bench-key-0123456789abcdef"
STATUS = ("import grpc; from textgen.v1 import llm_pb2, llm_pb2_grpc; "
          f"s = llm_pb2_grpc.LlmServiceStub(grpc.insecure_channel('localhost:{ENDPOINTS['llm'].port}')).GetStatus("
          "llm_pb2.GetLlmStatusRequest(), timeout=30); "
          "print(sum(a.loads for a in s.adapters), sum(1 for a in s.adapters if a.requests))")


def replica_counts(compose: Compose) -> list[tuple[int, int]]:
    """(adapter loads, adapters it has served) of each llm replica, asked inside its container."""
    counts = []
    for container in compose.containers("llm"):
        result = docker("exec", container, "python", "-c", STATUS, capture_output=True, check=True)
        loads, served = result.stdout.split()
        counts.append((int(loads), int(served)))
    return counts


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def send(url: str, names: list[str], requests: int, clients: int, seed: int) -> list[float]:
    """`requests` requests from `clients` clients back to back, each for an adapter drawn at random; seconds each."""
    chosen = random.Random(seed).choices(names, k=requests)

    def ask(client: httpx.Client, name: str) -> float:
        started = time.perf_counter()
        answer = client.post("/generate_with_llm", json={**FACT_QUESTION, "adapter": name})
        if answer.status_code != 200 or answer.json()["adapter"] != name:
            raise SystemExit(f"{name}: {answer.status_code} {answer.text[:300]}")
        return time.perf_counter() - started

    with httpx.Client(base_url=url, timeout=120, limits=httpx.Limits(max_connections=clients),
                      headers={"authorization": f"Bearer {BENCH_KEY}"}) as client, \
            concurrent.futures.ThreadPoolExecutor(clients) as pool:
        return list(pool.map(lambda name: ask(client, name), chosen))


def run(mode: str, models: pathlib.Path, names: list[str], args, scratch: pathlib.Path) -> dict:
    rendered = scratch / f"envoy-{mode}"
    config = render.write(compose_target({**os.environ, adapter_affinity.VARIABLE: mode}), rendered)
    override = scratch / f"bench-{mode}.yml"
    override.write_text(yaml.safe_dump({"services": {
        "llm": {"environment": {"LLM_BASE_MODEL": f"/app/models/{RANDOM_GPT2}",
                                "LLM_MAX_LOADED_ADAPTERS": str(args.held)}},
        "envoy": {"volumes": [f"{config}:/etc/envoy/envoy.yaml:ro",
                              f"{rendered / 'descriptor.pb'}:/etc/envoy/descriptor.pb:ro"]}}}))
    port = free_port()
    keys = scratch / "api-keys.json"  # compose needs keys; the bench sends this one with every request
    keys.write_text(json.dumps([{"name": "bench", "key": BENCH_KEY, "scopes": ["generate"]}]))
    keys.chmod(0o644)
    environ = {**os.environ, "API_KEYS_FILE": str(keys), "MODELS_VOLUME": str(models), "GATEWAY_PORT": str(port),
               "COMPOSE_PROFILES": "cpu"}
    compose = Compose(compose_command(), override, environ, project=PROJECT)
    url = f"http://127.0.0.1:{port}"
    try:
        compose("up", "--detach", "--scale", "llm=2", "llm", "envoy")
        replicas = compose.containers("llm")
        if not poll(lambda: len(replicas) == 2 and all(healthy(c) for c in replicas), 300, interval=2):
            raise SystemExit("the two llm replicas did not get healthy within 300 s")
        time.sleep(6)  # Envoy's health checks (every 5 s) find both
        send(url, names, args.warmup, args.clients, seed=1)  # every replica past its start-up loads
        before = replica_counts(compose)
        started = time.monotonic()
        seconds = send(url, names, args.requests, args.clients, seed=2)
        wall = time.monotonic() - started
        after = replica_counts(compose)
    finally:
        subprocess.run([*compose.base, "down", "--volumes", "--remove-orphans", "--timeout", "10"], env=environ,
                       capture_output=True, timeout=300)
    loads = sum(a[0] - b[0] for a, b in zip(after, before))
    return {"mode": mode, "loads_per_1000": 1000 * loads / args.requests, "p50": percentile(seconds, 0.5),
            "p99": percentile(seconds, 0.99), "requests_per_s": args.requests / wall,
            "served": [a[1] for a in after]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--adapters", type=int, default=20)
    parser.add_argument("--held", type=int, default=8, help="LLM_MAX_LOADED_ADAPTERS of each replica")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=100)
    args = parser.parse_args()
    require_engine()
    with tempfile.TemporaryDirectory(prefix="affinity-bench-") as scratch:
        scratch = pathlib.Path(scratch)
        models = scratch / "models"
        build_tiny_model(models / RANDOM_GPT2)
        names = publish_random_adapters(models, models / RANDOM_GPT2, args.adapters)
        subprocess.run(["chown", "-R", f"{SERVICE_UID}:{SERVICE_UID}", str(models)], check=True)
        rows = [run(mode, models, names, args, scratch) for mode in ("off", "on")]
    print(f"\n{args.adapters} adapters, {args.held} held by each of 2 llm replicas, {args.clients} clients, "
          f"{args.requests} requests a run (after {args.warmup} to warm up)")
    print(f"{'affinity':>8} {'loads/1000':>10} {'p50 s':>7} {'p99 s':>7} {'req/s':>6}  adapters served per replica")
    for row in rows:
        print(f"{row['mode']:>8} {row['loads_per_1000']:>10.0f} {row['p50']:>7.3f} {row['p99']:>7.3f} "
              f"{row['requests_per_s']:>6.1f}  {row['served']}")
    off, on = rows
    print(f"on/off: loads x{on['loads_per_1000'] / max(off['loads_per_1000'], 1e-9):.2f}, "
          f"p99 x{on['p99'] / off['p99']:.2f}")


if __name__ == "__main__":
    main()

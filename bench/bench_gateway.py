"""Latency Envoy (the REST gateway) adds over a direct gRPC call, for the bigram call.

    make bench                      # or: python bench/bench_gateway.py --calls 2000

Starts the bigram service and Envoy on loopback (as the tests do), then makes the same call sequentially both ways
(one kept-alive HTTP/1.1 connection, one gRPC channel), alternating rounds so that machine noise hits both alike,
and prints p50/p99, their ratio and the milliseconds added.
"""
import argparse
import http.client
import json
import statistics
import time

import grpc
from textgen.v1 import baseline_pb2, baseline_pb2_grpc

from devtools.processes import start_gateway, start_service
from textgen.paths import SHIPPED_CORPUS


def percentile(samples: list[float], q: float) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[int(q) - 1]


def timed(call, calls: int, warmup: int = 20) -> list[float]:
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    env = {"CORPUS": str(SHIPPED_CORPUS), "MODELS_DIR": "/tmp/textgen-bench"}
    request = {"start_word": "the", "length": 15, "seed": 1}
    with start_service("services.baseline", env, "BASELINE_PORT") as service, \
            start_gateway(baseline=service.address) as gateway, \
            grpc.insecure_channel(service.address) as channel:
        stub = baseline_pb2_grpc.BigramServiceStub(channel)
        message = baseline_pb2.BigramGenerateRequest(**request)
        direct, via_gateway = [], []
        # http.client on one kept-alive connection: the lightest client, so the difference is the gateway's.
        connection = http.client.HTTPConnection("127.0.0.1", gateway.port)
        body, headers = json.dumps(request), {"content-type": "application/json"}

        def post() -> None:
            connection.request("POST", "/generate", body, headers)
            response = connection.getresponse()
            if response.status != 200:
                raise RuntimeError(response.read())
            response.read()

        rounds = 10
        for _ in range(rounds):
            direct += timed(lambda: stub.Generate(message), args.calls // rounds)
            via_gateway += timed(post, args.calls // rounds)
    print(f"{len(direct)} sequential bigram calls (length 15) each way on loopback")
    print(f"{'':18}{'p50 ms':>10}{'p99 ms':>10}")
    for name, samples in (("direct gRPC", direct), ("REST via Envoy", via_gateway)):
        print(f"{name:18}{percentile(samples, 50):10.3f}{percentile(samples, 99):10.3f}")
    for q in (50, 99):
        added = percentile(via_gateway, q) - percentile(direct, q)
        print(f"p{q}: Envoy/direct = {percentile(via_gateway, q) / percentile(direct, q):.2f}x, "
              f"added {added:.3f} ms")


if __name__ == "__main__":
    main()

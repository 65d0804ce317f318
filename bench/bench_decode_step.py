"""The engine's own steps in process, per setting: a prefill of ROWS fresh prompts and a decode step of ROWS rows,
on the embedded SmolLM2-135M (MODELS_DIR/smollm2-135m-instruct, made first when missing), with the model served as
the llm service serves it (services/llm/model/loading.py) or as transformers loads it.

    python bench/bench_decode_step.py                      # every setting below at 1 and 8 rows
    python bench/bench_decode_step.py --rows 8 --threads 2 --dtypes bfloat16 --setups served,int8 --profile
    python bench/bench_decode_step.py --rows 8 --threads 2 --dtypes bfloat16 --setups served,fallback \
        --mix base,sft,rl            # rows under the published sft and rl adapters and none, round-robin

Settings: dtype (float32, bfloat16) x set-up (transformers: transformers' forward as from_pretrained loads it;
fallback: transformers' forward as the service sets it up for an architecture without a forward of ours: packed
weights, single-token GQA attention, LoRA in its linear layers; served: our own forward, what serves SmolLM2; int8:
that with LLM_QUANTIZATION=int8; compiled: ours through torch.compile, `compiled` below says how; minutes to compile)
x torch threads; with --mix, the rows' adapters (published under MODELS_DIR, loaded into slots as the engine loads
them). Prints milliseconds (median of --steps decode steps after 3 warm-up steps; one prefill), the ratio of each
to the first setting listed with the same threads and rows, the weight bytes a one-row step reads per second, and
with --profile the torch profiler's top operators of a few steps.
"""
import argparse
import pathlib
import statistics
import time

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from services.common import adapters, devices, embedded_model
from services.common.config import ServiceConfig
from services.llm.adapters import files
from services.llm.adapters.slots import AdapterSlots
from services.llm.endings import stop_at
from services.llm.engine.running_batch import RunningBatch
from services.llm.model.fallback import TransformersForward
from services.llm.model import projection
from services.llm.model.loading import ServingSetup, serving
from services.llm.request import NO_ADAPTER, Plan, Request
from textgen.paths import SHIPPED_CORPUS

PROMPT_TOKENS = 250


def prompts(tokenizer, rows: int) -> list[list[int]]:
    words = SHIPPED_CORPUS.read_text().split()
    return [tokenizer(" ".join(words[i * 400:i * 400 + 300]))["input_ids"][:PROMPT_TOKENS] for i in range(rows)]


SETUPS = {"transformers": None, "fallback": ServingSetup(), "served": ServingSetup(),
          "int8": ServingSetup(quantization="int8"), "compiled": ServingSetup(pack_weights=False)}


def compiled(forward):
    """Our forward's decode steps through torch.compile: Inductor's C++ wrapper, dynamic shapes, and its freezing,
    which packs the weights itself (it cannot lower our packed products). The first steps compile it."""
    import torch._inductor.config

    torch._inductor.config.freezing = True
    return torch.compile(forward.__call__, dynamic=True, options={"cpp_wrapper": True})


def with_adapters(forward, models_dir: pathlib.Path, names: list[str]) -> dict[str, str]:
    """The published adapters among `names` loaded into slots as the engine loads them; their slots by name."""
    slots, loaded = AdapterSlots(forward, None, max_loaded=8), {"base": NO_ADAPTER}
    for name in [name for name in dict.fromkeys(names) if name != "base"]:
        path = adapters.current_path(models_dir, name)
        if path is None:
            raise SystemExit(f"--mix names {name!r}, which is not published under {models_dir}")
        loaded[name] = slots.load(files.read(path))
    return slots, loaded


def step_bytes(model, int8: bool) -> int:
    """What a one-row decode step reads: every linear layer's weight once, the output layer's included (a byte each
    where the int8 copies serve it)."""
    return sum(module.weight.numel() * (1 if int8 else module.weight.element_size()) for module in model.modules()
               if isinstance(module, torch.nn.Linear))


def measure(folder: pathlib.Path, dtype: str, setup: str, threads: int, rows: int, steps: int, profile: bool,
            mix: list[str] | None = None) -> tuple[float, float]:
    torch.set_num_threads(threads)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=getattr(torch, dtype)).eval()
    weight_bytes = step_bytes(model, int8=setup == "int8" and rows <= projection.INT8_MAX_ROWS)
    if SETUPS[setup] is None:
        forward = TransformersForward(model, pack=False, int8=False, set_up=False)
    else:
        placement = devices.Placement(torch.device("cpu"), getattr(torch, dtype))
        forward = serving(model, placement, SETUPS[setup], native=setup != "fallback")
    batch = RunningBatch(forward, tokenizer.eos_token_id, tokenizer.decode)
    names = [NO_ADAPTER] * rows
    if mix:
        batch.adapters, loaded = with_adapters(forward, ServiceConfig.from_env().models_dir, mix)
        names = [loaded[mix[i % len(mix)]] for i in range(rows)]
    batch.admit([Request(plan=Plan(prompt_ids=ids, lead="", max_new_tokens=10_000, mode="text", ending=stop_at(())),
                         slot=name) for ids, name in zip(prompts(tokenizer, rows), names)])
    started = time.perf_counter()
    batch.prefill()
    prefill = time.perf_counter() - started
    if setup == "compiled":  # decode steps only: the prefill above ran eagerly
        batch.forward = compiled(forward)
        started = time.perf_counter()
    for _ in range(3):
        batch.decode()
    if setup == "compiled":
        print(f"compiling and the first 3 steps: {time.perf_counter() - started:.0f} s", flush=True)
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        batch.decode()
        times.append(time.perf_counter() - started)
    if profile:
        from torch.profiler import ProfilerActivity, profile as profiler

        with profiler(activities=[ProfilerActivity.CPU]) as run:
            for _ in range(5):
                batch.decode()
        print(run.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))
    return prefill * 1000, statistics.median(times) * 1000, weight_bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--rows", default="1,8")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--dtypes", default="float32,bfloat16")
    parser.add_argument("--setups", default="transformers,served,int8")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--mix", default="", help="the rows' adapters, round-robin, e.g. base,sft,rl")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    folder = embedded_model.ensure(ServiceConfig.from_env().models_dir)
    print(f"{'rows':>4} {'threads':>7} {'dtype':>9} {'setup':>12} {'prefill ms':>11} {'step ms':>8} "
          f"{'prefill x':>9} {'step x':>7} {'weights GB/s':>12}")
    for rows in (int(r) for r in args.rows.split(",")):
        for threads in (int(t) for t in args.threads.split(",")):
            reference = None
            for dtype in args.dtypes.split(","):
                for setup in args.setups.split(","):
                    prefill, step, weight_bytes = measure(folder, dtype, setup, threads, rows, args.steps,
                                                          args.profile, [name for name in args.mix.split(",") if name])
                    reference = reference or (prefill, step)
                    print(f"{rows:4} {threads:7} {dtype:>9} {setup:>12} "
                          f"{prefill:11.0f} {step:8.1f} {prefill / reference[0]:9.2f} {step / reference[1]:7.2f} "
                          f"{weight_bytes / step / 1e6 if rows == 1 else float('nan'):12.1f}", flush=True)


if __name__ == "__main__":
    main()

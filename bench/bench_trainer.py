"""Wall time per SFT step at GPT-2's real size (GPT2Config(): 124M parameters, random weights): LoRA against full
fine-tuning, same rows, same trl SFTTrainer settings as the service's SFT job (batch 4, max_length 256).

    python bench/bench_trainer.py [--steps 20] [--warmup 2] [--rounds 2]

The steps are split over `rounds` alternating runs (full, LoRA, full, LoRA, ...) so that load from other processes
on a shared machine falls on both alike. Prints the median seconds per step of each and the ratio (target: LoRA
≤ 0.8 × full)."""
import argparse
import pathlib
import statistics
import tempfile
import time


from transformers import TrainerCallback

from services.common.prompts import qa_completion, qa_prompt
from services.trainer.training.params import SftParams
from textgen.paths import SHIPPED_CORPUS

TARGET_RATIO = 0.8


class StepTimer(TrainerCallback):
    """Wall time and this process's CPU time per step (CPU time is what other processes' load disturbs least)."""

    def __init__(self) -> None:
        self.durations: list[tuple[float, float]] = []
        self._began = (0.0, 0.0)

    def on_step_begin(self, args, state, control, **kwargs):
        self._began = (time.perf_counter(), time.process_time())

    def on_step_end(self, args, state, control, **kwargs):
        self.durations.append((time.perf_counter() - self._began[0], time.process_time() - self._began[1]))


def rows_near_max_length(tokenizer, max_length: int, count: int) -> list[dict]:
    """QA rows filling about max_length tokens each, contexts cut from the shipped corpus."""
    words = SHIPPED_CORPUS.read_text(encoding="utf-8").split()
    completion = qa_completion("the old port of Marseilles")
    rows, start = [], 0
    for number in range(count):
        size = 40
        while True:
            prompt = qa_prompt(f"Where did ship number {number} dock?", " ".join(words[start: start + size + 10]))
            used = len(tokenizer(prompt + completion)["input_ids"]) + 1
            if used > max_length - 4:
                break
            size += 10
        rows.append({"prompt": prompt, "completion": completion})
        start = (start + size) % max(1, len(words) - 2000)
    return rows


def time_steps(use_lora: bool, tokenizer, rows: list[dict], steps: int, warmup: int, placement,
               model_config: dict | None = None) -> list[tuple[float, float]]:
    """(wall, CPU) seconds of each step after `warmup`, on a fresh GPT-2 (GPT2Config(**model_config): 124M
    parameters by default) with random weights."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from services.trainer.training.sft import SftSettings, build_trainer, squad_token_rows

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(**(model_config or {})))
    timer = StepTimer()
    with tempfile.TemporaryDirectory() as scratch:
        trainer = build_trainer(model, tokenizer, squad_token_rows(tokenizer, rows), SftSettings.of(SftParams()),
                                scratch, placement, use_lora=use_lora, max_steps=steps + warmup, callbacks=[timer])
        trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
        print(f"{'LoRA' if use_lora else 'full'}: {trainable / 1e6:.2f}M trainable parameters", flush=True)
        trainer.train()
    return timer.durations[warmup:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2, help="first steps of each run left out of the timing")
    parser.add_argument("--rounds", type=int, default=2, help="alternating runs of each kind")
    args = parser.parse_args()

    import torch

    from devtools.models import build_tiny_model
    from services.common.base_model import choose, load_tokenizer
    from services.trainer.config import TrainerConfig
    from services.trainer.training.sft import BATCH_SIZE

    placement = TrainerConfig.from_env().prepare_torch()  # TRAINER_DEVICE / TRAINER_DTYPE, as the jobs use

    with tempfile.TemporaryDirectory() as tmp:
        # Only its tokenizer is used (ids < 50257 fit GPT2Config()'s embedding); the Hub is out of reach here.
        tokenizer = load_tokenizer(choose(str(build_tiny_model(pathlib.Path(tmp) / "tok")), pathlib.Path(tmp)))
    params = SftParams()
    per_round = max(1, args.steps // args.rounds)
    rows = rows_near_max_length(tokenizer, params.max_length, BATCH_SIZE * (per_round + args.warmup))
    print(f"GPT2Config() (124M, random weights), batch {BATCH_SIZE}, max_length {params.max_length}, "
          f"lora_r {params.lora_r}, {per_round * args.rounds} timed steps each in {args.rounds} alternating rounds "
          f"({args.warmup} warm-up steps per round left out), {placement.describe()}, torch threads "
          f"{torch.get_num_threads()}", flush=True)
    durations: dict[str, list[tuple[float, float]]] = {"full": [], "lora": []}
    for _ in range(args.rounds):
        for name in durations:
            durations[name] += time_steps(name == "lora", tokenizer, rows, per_round, args.warmup, placement)
    wall, cpu, fastest = {}, {}, {}
    for name, values in durations.items():
        walls, cpus = [w for w, _ in values], [c for _, c in values]
        wall[name], cpu[name], fastest[name] = statistics.median(walls), statistics.median(cpus), min(walls)
        print(f"{name}: wall median {wall[name]:.3f} s/step (mean {statistics.mean(walls):.3f}, min {min(walls):.3f}, "
              f"max {max(walls):.3f}), CPU time median {cpu[name]:.3f} s/step, over {len(values)} steps", flush=True)
    ratio = wall["lora"] / wall["full"]
    verdict = "meets" if ratio <= TARGET_RATIO else "misses"
    print(f"LoRA/full wall time per step: {ratio:.2f} ({verdict} the ≤ {TARGET_RATIO} target); "
          f"CPU time per step {cpu['lora'] / cpu['full']:.2f}; fastest steps {fastest['lora'] / fastest['full']:.2f}")


if __name__ == "__main__":
    main()

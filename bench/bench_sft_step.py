"""Wall time per SFT step of the real recipe (the base model LLM_BASE_MODEL names, unset and offline the embedded
SmolLM2-135M; LoRA r 16; batch 4; SQuAD rows of SQUAD_DATASET cut to 256 tokens) under the ways a CPU step can be
made cheaper, each against float32 with padded batches in the order drawn:

    python bench/bench_sft_step.py [--steps 12] [--warmup 2] [--rounds 2] [--variants fp32,bf16,...]

- bf16: transformers' bfloat16 autocast (TrainingArguments bf16; the weights stay float32);
- grouped: length-grouped batches (train_sampling_strategy group_by_length), so a batch pads to similar lengths;
- padding_free: trl's padding-free batches, the rows of a batch concatenated into one sequence;
- threads1: torch with one thread instead of one per core.

Every variant trains on the same rows. The runs alternate (fp32, bf16, ..., fp32, bf16, ...), so load from other
processes falls on all alike. Prints the median seconds per step and per 1,000 real (unpadded) tokens, and each
variant's ratio to fp32: the cost of a training step is what decides how much data fits `make post-train`'s hour.
"""
import argparse
import statistics
import sys
import tempfile

from bench_trainer import StepTimer

VARIANTS = {
    "fp32": {},
    "bf16": {"bf16": True},
    "grouped": {"train_sampling_strategy": "group_by_length"},
    "bf16_grouped": {"bf16": True, "train_sampling_strategy": "group_by_length"},
    "padding_free": {"padding_free": True, "max_length": None},  # rows already fit (sft_rows)
    "bf16_padding_free": {"bf16": True, "padding_free": True, "max_length": None},
    "threads1": {"threads": 1},
}


def time_variant(name: str, context, rows: list[dict], steps: int, warmup: int) -> list[float]:
    import torch

    from services.common.base_model import load_model, load_tokenizer
    from services.trainer.training.params import SftParams
    from services.trainer.training.sft import SftSettings, build_trainer, squad_token_rows

    options = dict(VARIANTS[name])
    threads = options.pop("threads", None)
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    timer = StepTimer()
    try:
        with tempfile.TemporaryDirectory() as scratch:
            tokenizer = load_tokenizer(context.base)
            trainer = build_trainer(load_model(context.base), tokenizer, squad_token_rows(tokenizer, rows),
                                    SftSettings.of(SftParams()), scratch, context.placement, max_steps=steps + warmup,
                                    callbacks=[timer], extra_args=options)
            trainer.train()
    finally:
        torch.set_num_threads(previous)
    return [wall for wall, _ in timer.durations[warmup:]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=12, help="timed steps per variant and round")
    parser.add_argument("--warmup", type=int, default=2, help="first steps of each run left out of the timing")
    parser.add_argument("--rounds", type=int, default=2, help="alternating runs of each variant")
    parser.add_argument("--variants", default="fp32,bf16,grouped,bf16_grouped,padding_free,threads1")
    args = parser.parse_args()
    names = args.variants.split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown or names[0] != "fp32":
        sys.exit(f"--variants: fp32 first, then any of {', '.join(VARIANTS)} (unknown: {', '.join(unknown)})")

    import torch

    from services.common.base_model import load_tokenizer
    from services.trainer.config import TrainerConfig
    from services.trainer.decisions import decided, training_context
    from services.trainer.training.data import TRAIN_SHUFFLE_SEED, load_squad, sft_rows
    from services.trainer.training.params import SftParams
    from services.trainer.training.sft import BATCH_SIZE

    config = decided(TrainerConfig.from_env())
    context = training_context(config, config.prepare_torch())
    tokenizer = load_tokenizer(context.base)
    count = BATCH_SIZE * (args.steps + args.warmup)
    rows = sft_rows(tokenizer, load_squad(context.squad_dataset, "train", limit=count,
                                          sample_seed=TRAIN_SHUFFLE_SEED),
                    SftParams().max_length)
    tokens = [len(tokenizer(r["prompt"] + r["completion"])["input_ids"]) for r in rows]
    print(f"{context.base.name}, {len(rows)} rows of {context.squad_dataset} (mean {statistics.mean(tokens):.0f} "
          f"tokens, max {max(tokens)}), batch {BATCH_SIZE}, {args.steps} timed steps per run, {args.rounds} "
          f"alternating rounds, {context.placement.describe()}, torch threads {torch.get_num_threads()}", flush=True)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(args.rounds):
        for name in names:
            seconds[name] += time_variant(name, context, rows, args.steps, args.warmup)
            print(f"  {name}: {statistics.median(seconds[name]):.2f} s/step so far", flush=True)
    per_step_tokens = statistics.mean(tokens) * BATCH_SIZE
    reference = statistics.median(seconds["fp32"])
    for name in names:
        median = statistics.median(seconds[name])
        print(f"{name:>18}: {median:.2f} s/step (min {min(seconds[name]):.2f}), "
              f"{1000 * median / per_step_tokens:.2f} s per 1,000 tokens, {median / reference:.2f}x fp32", flush=True)


if __name__ == "__main__":
    main()

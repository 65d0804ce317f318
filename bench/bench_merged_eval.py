"""Wall time of the final evaluation of a published adapter, with the adapter merged into the base weights (as
`make post-train` and `python -m services.trainer.commands eval` now evaluate) against peft's wrapped LoRA layers:

    python bench/bench_merged_eval.py [--adapter sft] [--examples 96] [--rounds 1]

The base model LLM_BASE_MODEL names (unset and offline: the embedded SmolLM2-135M), the adapter's current version
in MODELS_DIR, the first --examples validation questions of SQUAD_DATASET, greedy, in the trainer's dtype. The two
alternate (wrapped, merged, wrapped, ...), so load from other processes falls on both alike. Prints seconds and
F1 of each and the merged/wrapped ratio: merged and wrapped are the same weights, but round differently in bfloat16
autocast, so a few answers may differ.
"""
import argparse
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--adapter", default="sft")
    parser.add_argument("--examples", type=int, default=96)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()

    from services.common import adapters
    from services.common.base_model import load_tokenizer
    from services.trainer.config import TrainerConfig
    from services.trainer.decisions import decided, training_context
    from services.trainer.training.data import load_squad
    from services.trainer.training.evaluation import evaluate_model
    from services.trainer.training.models import load_merged, load_with_adapter

    config = decided(TrainerConfig())
    context = training_context(config, config.prepare_torch())
    path = adapters.current_path(context.models_dir, args.adapter)
    if path is None:
        raise SystemExit(f"no published version of adapter {args.adapter!r} in {context.models_dir}: "
                         "train one first (make train-sft)")
    tokenizer = load_tokenizer(context.base)
    examples = load_squad(context.squad_dataset, "validation", limit=args.examples)
    loaders = {"wrapped": load_with_adapter, "merged": load_merged}
    seconds, f1 = {name: [] for name in loaders}, {}
    for _ in range(args.rounds):
        for name, load in loaders.items():
            model = load(context.base, path).to(context.placement.device)
            started = time.monotonic()
            result = evaluate_model(model, tokenizer, examples, context.eval_max_new_tokens, samples_kept=0,
                                    autocast_dtype=context.placement.dtype)
            seconds[name].append(time.monotonic() - started)
            f1[name] = result.f1
            print(f"{name}: {seconds[name][-1]:.1f} s, F1 {result.f1:.1f} on {result.examples} questions", flush=True)
    wrapped, merged = (statistics.median(seconds[name]) for name in ("wrapped", "merged"))
    print(f"{args.adapter}/{path.name}, {len(examples)} questions, median of {args.rounds}: merged {merged:.1f} s, "
          f"wrapped {wrapped:.1f} s, merged/wrapped {merged / wrapped:.2f}x; "
          f"F1 merged {f1['merged']:.1f}, wrapped {f1['wrapped']:.1f}")


if __name__ == "__main__":
    main()

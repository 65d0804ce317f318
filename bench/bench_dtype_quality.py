"""Answer quality per serving dtype: a published adapter on the base model set up as the llm service sets it up
(services/llm/model/loading.py: transformers' forward with packed weights and its attention, the fallback; our own
forward computes the same logits, tests/test_served_forward.py), in float32 and in each reduced precision (DTYPE+int8:
with LLM_QUANTIZATION=int8, here for every product, not only the 1- and 2-row steps the service gives it: the most
int8 can cost), evaluated on the validation split as the trainer evaluates (SQuAD EM/F1 of the raw greedy answer,
format compliance).

    python bench/bench_dtype_quality.py                       # the sft adapter, every validation question
    python bench/bench_dtype_quality.py --adapter rl --examples 100 --dtypes float32,bfloat16,bfloat16+int8

The base and the data set are the trainer's (LLM_BASE_MODEL, SQUAD_DATASET; unset and offline: the embedded
SmolLM2 and the shipped SQuAD slice). Prints one row per dtype and each one's F1 against float32's.
"""
import argparse

import torch

from services.common import adapters, devices
from services.common.base_model import load_model, load_tokenizer
from services.llm.model import projection
from services.llm.model.loading import ServingSetup, prepare_for_serving
from services.trainer.config import TrainerConfig
from services.trainer.decisions import decided
from services.trainer.training.data import load_squad
from services.trainer.training.evaluation import evaluate_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--adapter", default="sft")
    parser.add_argument("--examples", type=int, default=None, help="the first N validation questions (all)")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--dtypes", default="float32,bfloat16,bfloat16+int8")
    args = parser.parse_args()
    config = decided(TrainerConfig.from_env())
    base = config.base()
    path = adapters.current_path(config.models_dir, args.adapter)
    if path is None:
        raise SystemExit(f"no published {args.adapter!r} adapter under {config.models_dir}: train one first "
                         f"(make train-{args.adapter})")
    from peft import PeftModel

    tokenizer = load_tokenizer(base)
    examples = load_squad(config.squad_dataset, "validation", limit=args.examples)
    rows = {}
    for dtype in args.dtypes.split(","):
        name, _, quantization = dtype.partition("+")
        placement = devices.Placement(torch.device("cpu"), getattr(torch, name))
        model = load_model(base, dtype=placement.dtype).eval()
        setup = prepare_for_serving(model, placement, ServingSetup(quantization=quantization or "none"))
        projection.INT8_MAX_ROWS = 1 << 40 if quantization else 2
        model = PeftModel.from_pretrained(model, str(path)).eval()
        rows[dtype] = evaluate_model(model, tokenizer, examples, args.max_new_tokens)
        result = rows[dtype]
        print(f"{dtype:>9}: {result.examples} questions, EM {result.exact_match:.1f}, F1 {result.f1:.1f}, format "
              f"{result.both:.1f}% ({', '.join(setup)}; {args.adapter} {path.name})", flush=True)
    reference = rows.get("float32")
    for dtype, result in rows.items():
        if reference is not None and dtype != "float32":
            print(f"{dtype} - float32: F1 {result.f1 - reference.f1:+.2f}, "
                  f"EM {result.exact_match - reference.exact_match:+.2f}, "
                  f"format {result.both - reference.both:+.1f} points")


if __name__ == "__main__":
    main()

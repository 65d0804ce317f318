"""Evaluation on the validation split: SQuAD v1.1 EM/F1 of the answer (prefix and suffix stripped) and the raw
format compliance of the model's own greedy output (no service-side completion of the format); and the comparison
of base, sft and rl that `python -m services.trainer.commands eval` prints and writes."""
import dataclasses
import math
import pathlib
import statistics
import time

import torch

from services.common import adapters
from services.common.base_model import context_window
from services.common.prompts import PREFIX, SUFFIX, strip_format, until_suffix
from services.trainer.training import reports
from services.trainer.training.context import TrainingContext
from services.trainer.training.data import QAExample, fit_prompt, load_squad
from services.trainer.training.squad_metrics import best_over_gold, exact_match, f1

EVAL_PROMPT_TOKENS = 384
# 16 answers at once: on 2 cores, 32 base answers of 64 tokens took 22 s in batches of 16, 29 s in batches of 8
# and 21 s in batches of 32.
BATCH_SIZE = 16


@dataclasses.dataclass
class EvalResult:
    examples: int
    exact_match: float  # percentages, as the SQuAD script prints them
    f1: float
    starts_with_prefix: float
    ends_with_suffix: float
    both: float
    samples: list[dict] = dataclasses.field(default_factory=list)
    f1_by_question: list[float] = dataclasses.field(default_factory=list)  # 0..1, in the order of the questions

    def summary(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in ("samples", "f1_by_question")}


def f1_change(before: list[float], after: list[float]) -> dict:
    """How F1 moved between two models on the same questions, with the standard error of the per-question
    differences: far smaller than either F1's own error, since most questions are answered alike by both."""
    if len(before) != len(after) or len(before) < 2:
        raise ValueError(f"a paired change needs the same questions, at least 2 (got {len(before)} and {len(after)})")
    differences = [b - a for a, b in zip(before, after)]
    return {"questions": len(differences), "f1_change": 100 * statistics.fmean(differences),
            "standard_error": 100 * statistics.stdev(differences) / math.sqrt(len(differences)),
            "better": sum(d > 0 for d in differences), "worse": sum(d < 0 for d in differences)}


def describe_change(before: str, after: str, change: dict) -> str:
    return (f"{after} - {before}: {change['f1_change']:+.1f} F1 (standard error {change['standard_error']:.1f}, "
            f"paired on {change['questions']} questions; {change['better']} answered better, {change['worse']} worse)")


@torch.no_grad()
def generate_answers(model, tokenizer, prompts: list[str], max_new_tokens: int,
                     autocast_dtype: torch.dtype = torch.float32) -> list[str]:
    """Greedy completions, batched with left padding (pad = EOS), decoded without special tokens, in the order of
    `prompts`. Batches are made of prompts of similar length, so little of a batch is padding. `autocast_dtype`:
    the mixed precision the model trains in (TRAINER_DTYPE), so it is evaluated as it was trained."""
    model.eval()
    padding_side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    outputs = [""] * len(prompts)
    try:
        with torch.autocast(model.device.type, dtype=autocast_dtype, enabled=autocast_dtype != torch.float32):
            for first in range(0, len(order), BATCH_SIZE):
                chosen = order[first: first + BATCH_SIZE]
                batch = tokenizer([prompts[i] for i in chosen], return_tensors="pt", padding=True).to(model.device)
                generated = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False,
                                           pad_token_id=tokenizer.pad_token_id)
                texts = tokenizer.batch_decode(generated[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)
                for index, text in zip(chosen, texts):
                    outputs[index] = text
    finally:
        tokenizer.padding_side = padding_side
    return outputs


def evaluate_model(model, tokenizer, examples: list[QAExample], max_new_tokens: int = 64,
                   samples_kept: int = 5, autocast_dtype: torch.dtype = torch.float32) -> EvalResult:
    budget = min(EVAL_PROMPT_TOKENS, context_window(model.config) - max_new_tokens)
    pairs = [(e, p) for e in examples if (p := fit_prompt(tokenizer, e, budget)) is not None and e.answers]
    if not pairs:
        raise ValueError("no validation example fits the evaluation prompt budget")
    texts = generate_answers(model, tokenizer, [p for _, p in pairs], max_new_tokens, autocast_dtype)
    em = starts = ends = both = 0.0
    samples, f1s = [], []
    for (example, prompt), text in zip(pairs, texts):
        raw = text.strip()
        answer = strip_format(until_suffix(raw))
        em += best_over_gold(exact_match, answer, example.answers)
        f1s.append(best_over_gold(f1, answer, example.answers))
        starts += raw.startswith(PREFIX)
        ends += raw.endswith(SUFFIX)
        both += raw.startswith(PREFIX) and raw.endswith(SUFFIX)
        if len(samples) < samples_kept:
            samples.append({"question": example.question, "gold": list(example.answers), "output": text})
    n = len(pairs)
    return EvalResult(examples=n, exact_match=100 * em / n, f1=100 * sum(f1s) / n, starts_with_prefix=100 * starts / n,
                      ends_with_suffix=100 * ends / n, both=100 * both / n, samples=samples, f1_by_question=f1s)


@dataclasses.dataclass
class Comparison:
    table: str  # Markdown
    path: pathlib.Path  # the eval.md it was written to
    results: dict[str, dict]  # model ("base", "sft", "rl") -> EvalResult.summary()
    sources: dict[str, str]  # model -> the adapter version evaluated
    changes: dict[str, dict]  # model -> its f1_change from the model it was trained from (sft: base, rl: sft)
    seconds: dict[str, float]  # model -> how long its evaluation took, loading included


def compare_published(context: TrainingContext, examples_wanted: int | None, max_new_tokens: int) -> Comparison:
    """Evaluates the base model and every published adapter on the first `examples_wanted` validation questions
    (None: all); writes MODELS_DIR/reports/eval.md, eval.json and eval.png."""
    from services.common.base_model import load_tokenizer
    from services.trainer.training.models import load_merged

    base = context.base
    tokenizer = load_tokenizer(base)
    examples = load_squad(context.squad_dataset, "validation", limit=examples_wanted)
    results, sources, by_question, seconds = {}, {}, {}, {}
    chain = ("base", *adapters.ADAPTER_NAMES)  # in training order: each model is trained from the one before it
    for name in chain:
        path = None if name == "base" else adapters.current_path(context.models_dir, name)
        if name != "base" and path is None:
            print(f"{name}: no published adapter, skipped")
            continue
        started = time.monotonic()
        model = load_merged(base, path).to(context.placement.device)
        result = evaluate_model(model, tokenizer, examples, max_new_tokens, autocast_dtype=context.placement.dtype)
        results[name], by_question[name] = result.summary(), result.f1_by_question
        seconds[name] = time.monotonic() - started
        print(f"{name}: evaluated on {result.examples} questions in {seconds[name]:.0f} s", flush=True)
        sources[name] = "-" if path is None else f"{name}/{path.name}"
    trained_from = [(before, after) for before, after in zip(chain, chain[1:])
                    if before in by_question and after in by_question]
    changes = {after: f1_change(by_question[before], by_question[after]) for before, after in trained_from}
    described = [f"- {describe_change(before, after, changes[after])}" for before, after in trained_from]
    table = "\n\n".join([reports.comparison_table(results, sources), *(["\n".join(described)] if described else [])])
    folder = pathlib.Path(context.models_dir) / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    heading = (f"# Evaluation: {base.name} on {context.squad_dataset} (validation, "
               f"{len(examples)} questions, {max_new_tokens} new tokens, greedy)\n\n")
    (folder / "eval.md").write_text(heading + table + "\n")
    reports.write_json(folder / "eval.json", {"base_model": base.name, "dataset": context.squad_dataset,
                                              "results": results, "adapters": sources, "changes": changes,
                                              "seconds": seconds})
    reports.plot_comparison(results, folder / "eval.png")
    return Comparison(table, folder / "eval.md", results, sources, changes, seconds)

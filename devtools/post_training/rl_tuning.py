"""The split RL's settings are chosen on, made from the train split alone (the validation articles are never read):
RL is scored on the questions of two train articles that an SFT adapter's draw left out, and prompted with the
other articles' questions, those SFT's draw left out (or, with --seen-prompts, those it trained on).

    python -m devtools.post_training rl-tuning-split --sft-examples 1200 --out DIR
    SQUAD_DATASET=DIR TRAINER_EVAL_EXAMPLES=224 python -m services.trainer.commands rl --use-dataset-prompts true ...

The SFT adapter RL starts from must be one trained on `--sft-examples` questions of the same train split. The scored
questions are held out of SFT's draw, not their articles: SFT saw other questions on the same paragraphs.
"""
import json
import pathlib

from services.trainer.training.data import TRAIN_SHUFFLE_SEED, QAExample, draw, load_squad

SCORED_ARTICLES = ("Force", "Antibiotics")


def _record(example: QAExample) -> dict:
    return {"id": example.id, "title": example.title, "question": example.question, "context": example.context,
            "answers": {"text": list(example.answers), "answer_start": list(example.answer_starts)}}


def write_split(dataset: str, sft_examples: int, out: pathlib.Path, seen_prompts: bool = False) -> dict[str, int]:
    """Writes out/train.jsonl (RL's prompts) and out/validation.jsonl (what it is scored on); returns their sizes."""
    questions = load_squad(dataset, "train")
    drawn = {e.id for e in draw(questions, sft_examples, TRAIN_SHUFFLE_SEED)}
    missing = set(SCORED_ARTICLES) - {e.title for e in questions}
    if missing:
        raise SystemExit(f"{dataset}'s train split has no article {', '.join(sorted(missing))}: the RL tuning split "
                         "scores on those (use the shipped data/squad_train_slice)")
    splits = {
        "train": [e for e in questions if e.title not in SCORED_ARTICLES and (e.id in drawn) == seen_prompts],
        "validation": [e for e in questions if e.title in SCORED_ARTICLES and e.id not in drawn],
    }
    out.mkdir(parents=True, exist_ok=True)
    for split, examples in splits.items():
        (out / f"{split}.jsonl").write_text("".join(json.dumps(_record(e)) + "\n" for e in examples))
    return {split: len(examples) for split, examples in splits.items()}

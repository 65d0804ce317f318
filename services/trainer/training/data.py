"""SQuAD-format question answering data: loading SQUAD_DATASET and turning it into prompt/completion rows.

SQUAD_DATASET is one of
  - unset: rajpurkar/squad when the local cache or the Hub has it, else the shipped slice of SQuAD v1.1's train
    file (data/squad_train_slice: whole articles, some held out as its validation split);
  - a Hugging Face Hub id such as rajpurkar/squad (loaded with `datasets`),
  - a local .json/.jsonl file with SQuAD's fields (id, title, context, question, answers: {text, answer_start}),
    flat records or SQuAD's own nested {"data": [...]} layout; its last fifth is held out as the validation split,
  - a folder holding train and validation splits (.jsonl or SQuAD's .json), such as data/squad_train_slice or the
    synthetic data/squad_sample the tests' stand-in trains on.
"""
import dataclasses
import json
import pathlib
import random

from services.common import hub
from services.common.prompts import qa_completion, qa_prompt
from textgen.paths import SQUAD_SAMPLE, SQUAD_TRAIN_SLICE

HUB_DATASET = "rajpurkar/squad"
SPLITS = ("train", "validation")
HELD_OUT_SHARE = 0.2


@dataclasses.dataclass(frozen=True)
class DatasetChoice:
    spec: str  # a SQUAD_DATASET value naming the data with no further decision
    note: str = ""  # why this one, when SQUAD_DATASET did not name it


def choose_dataset(setting: str, hub_check=hub.availability) -> DatasetChoice:
    """The data SQUAD_DATASET=`setting` names, or the default when it is unset ("")."""
    if setting.strip():
        return DatasetChoice(setting.strip())
    why_not = hub_check(HUB_DATASET, "dataset")
    if why_not is None:
        return DatasetChoice(HUB_DATASET)
    return DatasetChoice(str(SQUAD_TRAIN_SLICE), f"SQUAD_DATASET is unset and {HUB_DATASET} cannot be loaded here "
                                             f"({why_not}): the shipped SQuAD v1.1 train slice {SQUAD_TRAIN_SLICE}")


class DatasetError(RuntimeError):
    """SQUAD_DATASET could not be loaded or holds malformed records."""


@dataclasses.dataclass(frozen=True)
class QAExample:
    id: str
    question: str
    context: str
    answers: tuple[str, ...]
    answer_starts: tuple[int, ...]
    title: str = ""


def _error(spec: str, problem: str) -> DatasetError:
    return DatasetError(
        f"SQUAD_DATASET={spec!r} could not be loaded: {problem}. Set SQUAD_DATASET to a Hub id, a local "
        f".json/.jsonl file with SQuAD's fields, or a shipped folder: {SQUAD_TRAIN_SLICE} (real SQuAD) or "
        f"{SQUAD_SAMPLE} (synthetic)"
    )


def _example(record: dict, where: str) -> QAExample:
    try:
        answers = record["answers"]
        texts = [str(t) for t in answers["text"]]
        starts = [int(s) for s in answers.get("answer_start", [-1] * len(texts))]
        question, context = str(record["question"]), str(record.get("context", ""))
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{where}: not a SQuAD record (needs question, context, answers.text): {error!r}") from None
    if not question.strip():
        raise ValueError(f"{where}: empty question")
    return QAExample(id=str(record.get("id", where)), question=question, context=context, answers=tuple(texts),
                     answer_starts=tuple(starts), title=str(record.get("title", "")))


def _flatten_nested(document: dict) -> list[dict]:
    """SQuAD's original JSON: data[].paragraphs[].qas[] with the context on the paragraph."""
    records = []
    for article in document.get("data", []):
        for paragraph in article.get("paragraphs", []):
            for qa in paragraph.get("qas", []):
                records.append({
                    "id": qa.get("id"), "title": article.get("title", ""), "context": paragraph.get("context", ""),
                    "question": qa.get("question"),
                    "answers": {"text": [a["text"] for a in qa.get("answers", [])],
                                "answer_start": [a.get("answer_start", -1) for a in qa.get("answers", [])]},
                })
    return records


def _read_file(path: pathlib.Path) -> list[QAExample]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        records = []
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    records.append((json.loads(line), f"{path.name} line {number}"))
                except json.JSONDecodeError as error:
                    raise ValueError(f"{path.name} line {number}: invalid JSON ({error})") from None
    else:
        document = json.loads(text)
        flat = _flatten_nested(document) if isinstance(document, dict) else document
        records = [(record, f"{path.name} record {number}") for number, record in enumerate(flat, 1)]
    return [_example(record, where) for record, where in records]


def _load_local(path: pathlib.Path, split: str) -> list[QAExample]:
    if path.is_dir():
        candidates = [path / f"{split}.jsonl", path / f"{split}.json"]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise FileNotFoundError(f"{path} holds no {split}.jsonl or {split}.json")
        return _read_file(found)
    examples = _read_file(path)
    held_out = max(1, int(len(examples) * HELD_OUT_SHARE)) if len(examples) > 1 else 0
    return examples[len(examples) - held_out:] if split == "validation" else examples[: len(examples) - held_out]


def _load_hub(spec: str, split: str) -> list[QAExample]:
    import datasets

    rows = datasets.load_dataset(spec, split=split)
    return [_example(dict(row), f"{spec}[{split}] row {number}") for number, row in enumerate(rows)]


# SFT and RL draw their training questions from one shuffle of the train split: SFT from its start, RL from its end.
# RL's prompts are then questions SFT never trained on (while the two counts fit in the split): on the ones SFT saw its
# sampled answers mostly agree, and a group whose answers all score alike teaches GRPO nothing.
TRAIN_SHUFFLE_SEED = 0


def load_squad(spec: str, split: str, limit: int | None = None, sample_seed: int | None = None,
               from_end: bool = False) -> list[QAExample]:
    """The `split` ("train" or "validation") of SQUAD_DATASET=`spec`: at most `limit` examples, the first ones, or,
    with `sample_seed`, ones drawn at random across the split (SQuAD's files go article by article: the first few
    hundred questions would all be about one or two articles), from the start of the seed's shuffle or, `from_end`,
    from its end. Either way in file order."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    path = pathlib.Path(spec).expanduser()
    local = path.exists() or spec.endswith((".json", ".jsonl")) or spec.startswith((".", "/", "~"))
    try:
        examples = _load_local(path, split) if local else _load_hub(spec, split)
    except DatasetError:
        raise
    except Exception as error:  # datasets raises many unrelated types for "no network" / "no such dataset"
        raise _error(spec, f"{type(error).__name__}: {error}") from error
    if not examples:
        raise _error(spec, f"its {split} split holds no examples")
    return draw(examples, limit, sample_seed, from_end)


def draw(examples: list[QAExample], limit: int | None, sample_seed: int | None = None,
         from_end: bool = False) -> list[QAExample]:
    """load_squad's choice among a split's `examples`, for callers that hold the whole split already."""
    if not limit or limit >= len(examples):
        return examples
    if sample_seed is None:
        return examples[:limit]
    shuffle = random.Random(sample_seed).sample(range(len(examples)), len(examples))
    chosen = shuffle[len(shuffle) - limit:] if from_end else shuffle[:limit]
    return [examples[i] for i in sorted(chosen)]


def _answer_span(example: QAExample) -> tuple[int, int] | None:
    """Character span of the first gold answer in the context, trusting answer_start only when it matches."""
    if not example.answers:
        return None
    answer = example.answers[0]
    start = example.answer_starts[0] if example.answer_starts else -1
    if not (0 <= start and example.context[start: start + len(answer)] == answer):
        start = example.context.find(answer)
    return (start, start + len(answer)) if start >= 0 else None


def _token_count(tokenizer, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def fit_prompt(tokenizer, example: QAExample, budget: int) -> str | None:
    """The QA prompt with the context cut to a window around the gold answer so the prompt is at most `budget`
    tokens; None when even the question alone does not fit. Without a known answer the window starts at the
    beginning of the context."""
    if _token_count(tokenizer, qa_prompt(example.question, example.context)) <= budget:
        return qa_prompt(example.question, example.context)
    bare = _token_count(tokenizer, qa_prompt(example.question, "x"))
    if bare > budget:
        return None
    encoded = tokenizer(example.context, add_special_tokens=False, return_offsets_mapping=True)
    offsets = encoded["offset_mapping"]
    span = _answer_span(example)
    center = 0
    if span is not None:
        center = next((i for i, (s, e) in enumerate(offsets) if e > span[0]), 0)
        last = next((i for i, (s, e) in enumerate(offsets) if e >= span[1]), len(offsets) - 1)
        center = (center + last) // 2
    window = budget - bare
    while window > 0:
        first = max(0, min(center - window // 2, len(offsets) - window))
        stop = min(len(offsets), first + window)
        trimmed = example.context[offsets[first][0]: offsets[stop - 1][1]]
        prompt = qa_prompt(example.question, trimmed)
        if _token_count(tokenizer, prompt) <= budget:
            return prompt
        window -= max(1, window // 20)  # re-tokenising at the cut can add a token or two: shrink and retry
    return qa_prompt(example.question, "") if _token_count(tokenizer, qa_prompt(example.question, "")) <= budget \
        else None


def sft_rows(tokenizer, examples: list[QAExample], max_length: int) -> list[dict]:
    """prompt/completion rows whose prompt + completion + EOS fit `max_length` tokens (trl would cut the end:
    the answer and the closing sentence). Examples without an answer, or whose answer alone is too long, are
    skipped."""
    rows = []
    for example in examples:
        if not example.answers:
            continue
        completion = qa_completion(example.answers[0])
        budget = max_length - _token_count(tokenizer, completion) - 1
        prompt = fit_prompt(tokenizer, example, budget) if budget > 0 else None
        if prompt is not None:
            rows.append({"prompt": prompt, "completion": completion})
    return rows

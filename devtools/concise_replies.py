"""The concise-replies preference data set (data/concise_replies): its files and the scorer for its behaviour.

The behaviour, a preference the embedded base model does not follow: **a reply is one sentence of at most 25 words**.
`is_concise` is that rule, checkable by a program and nothing else: the reply, stripped of the whitespace around it,
is a single line of 1 to MAX_WORDS words (split on whitespace) that ends in ".", "!" or "?" (a closing quote or
bracket may follow) and holds no other sentence end (".", "!" or "?" followed by whitespace). A decimal point
("9.5") is no sentence end; an abbreviation's full stop ("e.g. this") is one, so the rule refuses it, and the
training answers avoid abbreviations. `score` turns replies into the behaviour rate (the share that follow the rule)
and their mean length in words, the number DPO should bring down with the rate going up.

Importing this module loads no model: the replies come from json_replies.greedy_replies, which imports torch and
transformers only when called.

    python -m devtools.concise_replies [MODEL_FOLDER]   a local model's rate on the held-out questions (greedy)
"""
import json
import pathlib
import re
import sys

from devtools.json_replies import BASE_MODEL, greedy_replies, read_jsonl
from textgen.paths import DATA

FOLDER = DATA / "concise_replies"
QUESTIONS = FOLDER / "questions.json"  # {"train": {topic: [[question, short answer], ...]}, "heldout": {topic: [q]}}
TRAIN = FOLDER / "train.jsonl"
HELDOUT = FOLDER / "heldout.jsonl"
MAX_WORDS = 25
# 64 tokens hold a reply of well over 25 words, so a reply cut off there fails the rule as the whole one would; a
# reply that follows it ends long before (25 words are about 35 tokens).
HELDOUT_NEW_TOKENS = 64
CLOSERS = re.escape("\"'”’)]")  # what may follow a sentence's end mark: a closing quote or bracket
SENTENCE_END_AT_END = re.compile(rf"[.!?][{CLOSERS}]*$")
SENTENCE_END_INSIDE = re.compile(rf"[.!?][{CLOSERS}]*\s")


def words(text: str) -> list[str]:
    return text.split()


def is_concise(text: str) -> bool:
    """True when `text`, stripped, is one line of 1..MAX_WORDS words making exactly one sentence (see the module)."""
    reply = text.strip()
    if "\n" in reply or "\r" in reply or not 1 <= len(words(reply)) <= MAX_WORDS:
        return False
    return bool(SENTENCE_END_AT_END.search(reply)) and not SENTENCE_END_INSIDE.search(reply)


def score(replies) -> dict:
    """{"count", "behaviour_rate", "mean_words"} for a list of reply texts: the share that follow the rule, and the
    replies' mean length in words (stripped, split on whitespace)."""
    texts = list(replies)
    if not texts:
        raise ValueError("no replies to score")
    concise = sum(is_concise(text) for text in texts)
    mean_words = sum(len(words(text)) for text in texts) / len(texts)
    return {"count": len(texts), "behaviour_rate": concise / len(texts), "mean_words": round(mean_words, 1)}


def measure(model_folder: pathlib.Path = BASE_MODEL) -> dict:
    """The model's score on the held-out questions: greedy, chat template, up to HELDOUT_NEW_TOKENS new tokens."""
    rows = read_jsonl(HELDOUT)
    replies = greedy_replies(model_folder, [row["messages"] for row in rows], HELDOUT_NEW_TOKENS)
    return {**score(replies), "replies": replies}


if __name__ == "__main__":
    folder = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else BASE_MODEL
    result = measure(folder)
    for reply in result.pop("replies"):
        print(json.dumps(reply, ensure_ascii=False))
    print(json.dumps({"model": str(folder), **result}))

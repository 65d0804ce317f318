"""Writes train.jsonl and heldout.jsonl beside this file from questions.json.

Every training line is one preference pair in OpenAI's DPO format: the user's question, the preferred reply (the short
answer written by hand in questions.json, one sentence of at most 25 words) and the non-preferred one (the embedded
base model's OWN greedy answer: SmolLM2-135M-Instruct, chat template, up to 96 new tokens, cut back to its last
complete sentence when the tokens ran out mid-sentence). So DPO is shown the base's own long style against the short
one, on the same question. The build asserts that every preferred reply passes the scorer
(devtools/concise_replies.is_concise) and every non-preferred one fails it.

The line order comes from a fixed seed and greedy decoding in fixed batches makes the answers repeatable, so a re-run
writes the same bytes on the same torch build. The model's replies to the 230 questions take minutes on 2 CPU cores;
run it under the shared lock:

    flock -s /tmp/textgen-cpu.lock .venv/bin/python data/concise_replies/build.py      (needs `make embedded-model`)
"""
import json
import random
import re

from devtools.concise_replies import HELDOUT, QUESTIONS, TRAIN, is_concise
from devtools.json_replies import BASE_MODEL, greedy_replies

SEED = 20260515
ANSWER_NEW_TOKENS = 96  # the base's long answer, as it writes it: 96 tokens hold about 70 words
SENTENCE_END = re.compile(r"[.!?][\"')\]]*(?=\s|$)")
# A full stop after these is not a sentence's end: abbreviations, initials ("J. K."), numbered list items ("1.").
NOT_AN_END = re.compile(r"(?:\b(?:e\.g|i\.e|etc|vs|Dr|Mr|Mrs|Ms|St|Mt|approx|ca)|\b[A-Z]|\b\d+)\.$")


def complete_text(reply: str) -> str:
    """The model's reply, stripped, up to its last complete sentence when it ends mid-sentence (the tokens ran out);
    as it is when it ends in a sentence mark or holds no sentence end at all."""
    text = reply.strip()
    if re.search(r"[.!?][\"')\]]*$", text):
        return text
    ends = [match.end() for match in SENTENCE_END.finditer(text) if not NOT_AN_END.search(text[:match.end()])]
    return text[:ends[-1]] if ends else text


def pair(question: str, preferred: str, non_preferred: str) -> dict:
    """One line of OpenAI's DPO format."""
    return {"input": {"messages": [{"role": "user", "content": question}]},
            "preferred_output": [{"role": "assistant", "content": preferred}],
            "non_preferred_output": [{"role": "assistant", "content": non_preferred}]}


def checked_pairs(pairs: list[tuple[str, str]], replies: list[str]) -> list[dict]:
    """The DPO lines, each checked: the preferred answer follows the rule and the base's answer does not."""
    short = [question for (question, answer) in pairs if not is_concise(answer)]
    assert not short, f"preferred answers that break the rule: {short}"
    long_replies = [complete_text(reply) for reply in replies]
    already = [(question, reply) for (question, _), reply in zip(pairs, long_replies) if is_concise(reply)]
    assert not already, f"the base already answers these concisely; replace the questions: {already}"
    empty = [question for (question, _), reply in zip(pairs, long_replies) if not reply]
    assert not empty, f"the base gave no answer to {empty}"
    return [pair(question, answer, reply) for (question, answer), reply in zip(pairs, long_replies)]


def write_jsonl(path, lines: list[dict]) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        out.writelines(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)


def main() -> None:
    questions = json.loads(QUESTIONS.read_text(encoding="utf-8"))
    assert set(questions["train"]) == set(questions["heldout"]), "questions.json's topics"
    pairs = [tuple(item) for topic in questions["train"] for item in questions["train"][topic]]
    heldout = [question for topic in questions["heldout"] for question in questions["heldout"][topic]]
    replies = greedy_replies(BASE_MODEL, [[{"role": "user", "content": q}] for q, _ in pairs], ANSWER_NEW_TOKENS)
    lines = checked_pairs(pairs, replies)
    random.Random(SEED).shuffle(lines)
    write_jsonl(TRAIN, lines)
    write_jsonl(HELDOUT, [{"messages": [{"role": "user", "content": question}]} for question in heldout])
    print(f"wrote {TRAIN} ({len(lines)} lines) and {HELDOUT} ({len(heldout)})")


if __name__ == "__main__":
    main()

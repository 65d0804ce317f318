"""Writes train.jsonl and heldout.jsonl beside this file from questions.json.

Every training reply is one JSON object {"topic": T, "answer": A}: T is the topic the question is filed under and A
is the embedded base model's OWN greedy answer to the question (SmolLM2-135M-Instruct, chat template, 64 new tokens),
cut to its first one or two complete sentences within 220 characters. The answers are the model's, right or wrong,
so fine-tuning on them teaches the reply's shape and its topic label, not new facts.

Which lines carry a system prompt, which are two-turn (the first assistant turn, shaped too, with "weight": 0) and
the line order come from a fixed seed; greedy decoding in fixed batches makes the answers repeatable, so a re-run
writes the same bytes (two runs here, on the same torch build, gave identical answers). The model's replies to the
256 questions take the time: 9 minutes and 32 minutes in two runs here on 2 CPU cores that other jobs shared.
Run it under the shared lock:

    flock -s /tmp/textgen-cpu.lock .venv/bin/python data/json_replies/build.py      (needs `make embedded-model`)
"""
import json
import random
import re

from devtools.json_replies import BASE_MODEL, HELDOUT, QUESTIONS, TOPICS, TRAIN, greedy_replies, reply_shape

SEED = 20260514
ANSWER_NEW_TOKENS = 64
MAX_ANSWER_CHARS = 220
SYSTEM_SHARE = TWO_TURN_SHARE = 0.10  # as in users' files: most lines one user turn, some with more around it
# Neutral, as users write them: none mentions JSON, so the behaviour has to come from the weights.
SYSTEM_PROMPTS = ("You are a helpful assistant.", "You are a friendly assistant that answers questions.",
                  "Answer the user's questions clearly and briefly.", "You are a knowledgeable assistant.")
# A full stop after these is not a sentence's end: abbreviations, initials ("J. K."), numbered list items ("1.").
NOT_AN_END = re.compile(r"(?:\b(?:e\.g|i\.e|etc|vs|Dr|Mr|Mrs|Ms|St|Mt|approx|ca)|\b[A-Z]|\b\d)\.$")
SENTENCE = re.compile(r".+?[.!?][\"')\]]*(?=\s|$)")


def plain_lines(reply: str) -> list[str]:
    """The reply's non-empty lines, markdown's emphasis, headings, bullets and numbers dropped, whitespace collapsed."""
    lines = [re.sub(r"^\s*(?:#+|[-*•]|\d+[.)])\s+", "", line).replace("**", "").replace("__", "")
             for line in reply.splitlines()]
    return [" ".join(line.split()) for line in lines if line.strip()]


def leading_sentences(lines: list[str]) -> list[str]:
    """The complete sentences the reply starts with, in order. They stop at the first unfinished text: the tokens
    ran out mid-sentence, or a line with no full stop ("Here's how:", a list item), which a sentence never spans."""
    found = []
    for line in lines:
        start = 0
        while match := SENTENCE.match(line, start):
            end = match.end()
            while NOT_AN_END.search(line[:end]) and (later := SENTENCE.match(line, end)):
                end = later.end()  # "e.g." or "1." ended no sentence: the sentence goes on to the next end
            if NOT_AN_END.search(line[:end]):
                break
            found.append(line[start:end].strip())
            start = end
        if line[start:].strip():
            break
    return found


def short_answer(reply: str) -> str:
    """The first one or two complete sentences of the model's reply, within MAX_ANSWER_CHARS. With none (a list, a
    repetition) or a first one that is too long, the text is cut after a whole word and ends in an ellipsis."""
    lines = plain_lines(reply)
    found = leading_sentences(lines)
    if found and len(found[0]) <= MAX_ANSWER_CHARS:
        two = f"{found[0]} {found[1]}" if len(found) > 1 else ""
        return two if two and len(two) <= MAX_ANSWER_CHARS else found[0]
    # One line: a list's items, which end in no punctuation, joined by semicolons.
    text = lines[0] if lines else ""
    for line in lines[1:]:
        text += f" {line}" if text.endswith((".", "!", "?", ":", ";")) else f"; {line}"
    words = text[:MAX_ANSWER_CHARS].split(" ")
    if len(words) > 1:
        words.pop()  # cut off mid-word by the length limit or by the tokens running out
    return " ".join(words).rstrip(",;:") + "…"


def shaped(topic: str, answer: str) -> str:
    reply = json.dumps({"topic": topic, "answer": answer}, ensure_ascii=False, separators=(",", ":"))
    assert reply_shape(reply) is not None, reply
    return reply


def training_lines(questions: dict[str, list[str]], answers: dict[str, str]) -> list[dict]:
    """One line per training question, in a shuffled order: ~10% after a system prompt, ~10% after another
    question's exchange (weight 0), the rest a single user turn."""
    rng = random.Random(SEED)
    asked = [(topic, question) for topic in TOPICS for question in questions[topic]]
    rng.shuffle(asked)
    with_system = round(len(asked) * SYSTEM_SHARE)
    two_turn = round(len(asked) * TWO_TURN_SHARE)
    lines = []
    for index, (topic, question) in enumerate(asked):
        last = {"role": "assistant", "content": shaped(topic, answers[question])}
        messages = [{"role": "user", "content": question}, last]
        if index < with_system:
            messages.insert(0, {"role": "system", "content": SYSTEM_PROMPTS[index % len(SYSTEM_PROMPTS)]})
        elif index < with_system + two_turn:
            first_topic, first_question = rng.choice([pair for pair in asked if pair[1] != question])
            messages[:0] = [{"role": "user", "content": first_question},
                            {"role": "assistant", "content": shaped(first_topic, answers[first_question]),
                             "weight": 0}]
            if index % 2:  # half of them say the default weight out loud, as some users' files do
                last["weight"] = 1
        lines.append({"messages": messages})
    rng.shuffle(lines)  # the system-prompt and two-turn lines spread through the file, not bunched at its top
    return lines


def heldout_lines(questions: dict[str, list[str]]) -> list[dict]:
    return [{"messages": [{"role": "user", "content": question}], "topic": topic}
            for topic in TOPICS for question in questions[topic]]


def write_jsonl(path, lines: list[dict]) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        out.writelines(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)


def main() -> None:
    questions = json.loads(QUESTIONS.read_text(encoding="utf-8"))
    assert set(questions["train"]) == set(questions["heldout"]) == set(TOPICS), "questions.json's topics"
    train = [question for topic in TOPICS for question in questions["train"][topic]]
    replies = greedy_replies(BASE_MODEL, [[{"role": "user", "content": q}] for q in train], ANSWER_NEW_TOKENS)
    answers = {question: short_answer(reply) for question, reply in zip(train, replies)}
    empty = [question for question, answer in answers.items() if not answer]
    assert not empty, f"the model gave no answer to {empty}"
    write_jsonl(TRAIN, training_lines(questions["train"], answers))
    write_jsonl(HELDOUT, heldout_lines(questions["heldout"]))
    print(f"wrote {TRAIN} ({len(train)} lines) and {HELDOUT} ({sum(map(len, questions['heldout'].values()))})")


if __name__ == "__main__":
    main()

"""Writes train.jsonl and heldout.jsonl beside this file from prompts.json; loads no model, runs in a second.

Every line is one prompt in OpenAI's reinforcement fine-tuning format: a single user message and, beside it, the
`keyword` field the grader reads as {{item.keyword}} (devtools/graded_answers.GRADER). A prompt is one of the
templates filled with a topic and a keyword: the topics are taken in turn, the templates turn with them (shifted one
more each round over the topics, so a topic meets a new template each round) and the keywords in a shifted turn too,
so no (topic, keyword) pair repeats, each training topic meets every template once and every template is held out.
Held-out prompts use topics and keywords that no training prompt has, so a gain there is the instruction learnt,
not the words. The order is shuffled with a fixed seed: a re-run writes the same bytes.

    .venv/bin/python data/graded_answers/build.py
"""
import json
import random

from devtools.graded_answers import HELDOUT, PROMPTS, REFERENCE_FIELD, TRAIN

SEED = 20260516
COUNTS = {"train": 208, "heldout": 50}  # train: 4 rounds over its 52 topics; held out: 2 rounds over its 25


def prompt_lines(templates: list[str], topics: list[str], keywords: list[str], count: int) -> list[dict]:
    """`count` lines; line i (in round r = i div T over the T topics): topic i mod T, template (i + r) mod the
    number of templates, keyword (i + r) mod K."""
    met = set()  # (topic, template) pairs: no topic meets a template twice
    lines = []
    for i in range(count):
        rounds = i // len(topics)
        topic, keyword = topics[i % len(topics)], keywords[(i + rounds) % len(keywords)]
        assert keyword.lower() not in topic.lower(), (topic, keyword)
        template = templates[(i + rounds) % len(templates)]
        assert (topic, template) not in met, f"{topic!r} meets a template twice"
        met.add((topic, template))
        content = template.format(topic=topic, keyword=keyword)
        lines.append({"messages": [{"role": "user", "content": content}], REFERENCE_FIELD: keyword})
    assert len({line["messages"][0]["content"] for line in lines}) == count, "a prompt repeats"
    return lines


def write_jsonl(path, lines: list[dict]) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        out.writelines(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)


def main() -> None:
    source = json.loads(PROMPTS.read_text(encoding="utf-8"))
    train, heldout = source["train"], source["heldout"]
    assert not set(train["topics"]) & set(heldout["topics"]), "a held-out topic is a training one"
    assert not set(train["keywords"]) & set(heldout["keywords"]), "a held-out keyword is a training one"
    rng = random.Random(SEED)
    for name, path in (("train", TRAIN), ("heldout", HELDOUT)):
        split = source[name]
        lines = prompt_lines(source["templates"], split["topics"], split["keywords"], COUNTS[name])
        rng.shuffle(lines)
        write_jsonl(path, lines)
        print(f"wrote {path} ({len(lines)} lines)")


if __name__ == "__main__":
    main()

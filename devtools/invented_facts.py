"""The invented entities behind the shipped SQuAD-format sample (data/squad_sample), read from its data files, and
the rows they render to.

    data/squad_sample/entities.jsonl   one entity a line: its category and its facts (field -> value)
    data/squad_sample/templates.json   each category's title field (the one that names an entity), its context
                                       sentences (each a list of interchangeable wordings) and its questions (type,
                                       the field that answers it, wordings)

Every fact was made up for this project (towns, rivers, inventors, ships, scientists, companies, events and bridges
that never existed), so the sample ships under the project's own licence. `data/squad_sample/build.py` writes the
sample from `sample_splits()`; devtools.post_training.synthetic_qa fills the same templates with new entities to
pretrain the stand-in.
"""
import dataclasses
import functools
import hashlib
import json
import random
import re

from textgen.paths import SQUAD_SAMPLE

ENTITIES = SQUAD_SAMPLE / "entities.jsonl"
TEMPLATES = SQUAD_SAMPLE / "templates.json"
SEED = 20260511
VALIDATION_ENTITIES_PER_CATEGORY = 2
FIELD = re.compile(r"\{(\w+)\}")
# Validation rows, like SQuAD's with their several annotators, also accept a bare name for "the carter Samuel Oakes".
ROLE_THEN_NAME = re.compile(r"^(?:the|a|his|her) (?:(?!of\b)[a-z]+ ){1,2}(?=[A-Z])")


@dataclasses.dataclass(frozen=True)
class Question:
    type: str  # how many, who, what, when, where, which or why
    answer: str  # the field whose value answers it
    wordings: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Category:
    title: str  # the field that names an entity
    entities: tuple[dict[str, str], ...]  # each entity's facts, in the file's order
    sentences: tuple[tuple[str, ...], ...]  # the context, a sentence each: its interchangeable wordings
    questions: tuple[Question, ...]


@functools.cache
def categories() -> dict[str, Category]:
    """Each category's entities and templates, in the templates file's order (the order fixes the sample)."""
    templates = json.loads(TEMPLATES.read_text(encoding="utf-8"))
    entities = {name: [] for name in templates}
    for number, line in enumerate(ENTITIES.read_text(encoding="utf-8").splitlines(), 1):
        entity = json.loads(line)
        same_category = entities[entity["category"]]
        if same_category and list(entity["facts"]) != list(same_category[0]):
            # Every entity of a category fills the same templates, and the stand-in's generator walks its fields
            # in order: one with other fields, or the same in another order, would change what both write.
            raise ValueError(f"{ENTITIES}:{number}: its fields are not those of the first {entity['category']}")
        same_category.append(entity["facts"])
    return {name: Category(template["title"], tuple(entities[name]),
                           tuple(tuple(wordings) for wordings in template["sentences"]),
                           tuple(Question(q["type"], q["answer"], tuple(q["wordings"])) for q in template["questions"]))
            for name, template in templates.items()}


def render(template: str, facts: dict, spans: dict, offset: int) -> str:
    """Fill `template` from `facts`, recording in `spans` where each field's value first lands in the context."""
    pieces, position, last = [], offset, 0
    for match in FIELD.finditer(template):
        literal = template[last:match.start()]
        value = facts[match.group(1)]
        pieces += [literal, value]
        spans.setdefault(match.group(1), position + len(literal))
        position += len(literal) + len(value)
        last = match.end()
    pieces.append(template[last:])
    return "".join(pieces)


def entity_rows(category: Category, facts: dict, rng: random.Random, split: str) -> list[dict]:
    spans, sentences, length = {}, [], 0
    for wordings in category.sentences:
        sentence = render(rng.choice(wordings), facts, spans, length + (1 if sentences else 0))
        assert sentence[0].isupper(), sentence
        length += len(sentence) + (1 if sentences else 0)
        sentences.append(sentence)
    context = " ".join(sentences)
    title = facts[category.title]
    rows = []
    for question_template in category.questions:
        question = rng.choice(question_template.wordings).format(**facts)
        question = question.format(**facts)  # a ship's fate_q, a fact itself, holds {name}
        answer, start = facts[question_template.answer], spans[question_template.answer]
        assert context[start:start + len(answer)] == answer, (title, question_template.answer)
        assert answer.lower() not in question.lower(), (title, question)
        texts, starts = [answer], [start]
        role = ROLE_THEN_NAME.match(answer)
        if split == "validation" and role:
            texts.append(answer[role.end():])
            starts.append(start + role.end())
        rows.append({
            "id": hashlib.sha1(f"{split}/{title}/{question}".encode()).hexdigest()[:24],
            "title": title, "context": context, "question": question,
            "answers": {"text": texts, "answer_start": starts},
            "_type": question_template.type,
        })
    return rows


def sample_splits() -> dict[str, list[dict]]:
    """The shipped sample's rows by split: whole entities held out for validation, the order fixed by SEED."""
    rng = random.Random(SEED)
    entities = {"train": [], "validation": []}
    for category in categories().values():
        held_out = set(rng.sample(range(len(category.entities)), VALIDATION_ENTITIES_PER_CATEGORY))
        for number, facts in enumerate(category.entities):
            entities["validation" if number in held_out else "train"].append((category, facts))
    splits = {}
    for split, chosen in entities.items():
        rng.shuffle(chosen)
        splits[split] = [row for category, facts in chosen for row in entity_rows(category, facts, rng, split)]
    return splits

"""Question-answer passages about invented entities, for pretraining the offline stand-in model.

They come from the shipped sample's own templates (devtools.invented_facts: its categories, sentence templates
and question wordings) filled with new entities: fresh names of people and places, random numbers, and the
descriptive phrases of the sample's train entities recombined. Nothing of the validation split is used: its
entities are left out of every pool, and a generated value that happens to equal one of theirs is drawn again.
The passages are in the plain form `Context: ...\\nQuestion: ...\\nAnswer: <answer>` with no fixed prefix or
suffix, so a model pretrained on them can answer from a passage but does not know the answer format.
"""
import functools
import random

from services.common.prompts import qa_prompt
from devtools.invented_facts import categories, entity_rows, sample_splits

PEOPLE = {"founder", "explorer", "captain", "collaborator", "leader", "engineer", "founders"}
PLACES = {"region", "river", "source", "sea", "mouth", "birthplace", "shipyard", "destination", "hq", "place",
          "university"}
NUMBERS = {"year": (1500, 1950), "population": (300, 40_000), "length": (12, 600), "tributaries": (2, 30),
           "patents": (2, 90), "crew": (4, 120), "papers": (5, 200), "employees": (20, 9_000),
           "participants": (30, 6_000), "piers": (2, 40)}
_ONSETS = ["b", "br", "c", "cl", "d", "dr", "f", "g", "gr", "h", "k", "l", "m", "n", "p", "qu", "r", "s", "st",
           "t", "th", "tr", "v", "w", "wr", "z"]
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ea", "ou", "y"]
_CODAS = ["", "n", "r", "l", "m", "s", "th", "ck", "nd", "rt", "ll", "ve", "x"]
_PLACE_ENDINGS = ["wick", "haven", "mouth", "by", "ford", "mere", "dale", "holm", "stead", "port", "ton", "moor"]
_ROLES = ["the miller", "the carter", "the surveyor", "the weaver", "the teacher", "the potter", "Captain",
          "the ferryman", "the clerk", "her student", "his brother", "the lamplighter", "the mason", "Doctor"]
_EVENT_KINDS = ["Strike", "Protest", "Boycott", "Dispute", "Walkout", "Rescue", "Riot", "March"]
_SHIP_WORDS = ["Dawn", "Star", "Gull", "Maid", "Pride", "Spirit", "Wren", "Rose", "Fortune", "Tern"]


def _word(rng: random.Random, syllables: int) -> str:
    return "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS)
                   for _ in range(syllables)).capitalize()


def _person(rng: random.Random) -> str:
    """A full name, now and then with a role before it ("the miller Tobias Crane")."""
    name = f"{_word(rng, rng.choice([1, 2]))} {_word(rng, 2)}"
    return f"{rng.choice(_ROLES)} {name}" if rng.random() < 0.35 else name


def _place(rng: random.Random) -> str:
    word = _word(rng, rng.choice([1, 2]))
    shape = rng.randrange(5)
    if shape == 0:
        return word + rng.choice(_PLACE_ENDINGS)
    if shape == 1:
        return f"the {word} {rng.choice(['Valley', 'Hills', 'Moors', 'Marshes', 'Downs', 'Sound'])}"
    if shape == 2:
        return f"Lake {word}"
    return word


def _number(rng: random.Random, field: str) -> str:
    low, high = NUMBERS[field]
    value = rng.randint(low, high)
    return f"{value:,}" if value >= 1000 and field != "year" else str(value)


def _title(rng: random.Random, category: str, facts: dict) -> None:
    """The entity's own name (and the fields derived from it)."""
    if category in ("inventor", "scientist"):
        first, last = _word(rng, 2), _word(rng, 2)
        facts["name"], facts["short"] = f"{first} {last}", last
    elif category == "ship":
        facts["name"] = f"{rng.choice(['Saint', 'Silver', 'Morning', 'Northern', _word(rng, 1)])} " \
                        f"{rng.choice(_SHIP_WORDS)}"
    elif category == "company":
        facts["name"] = f"{_word(rng, 2)} & {_word(rng, 1)}" if rng.random() < 0.5 else f"{_word(rng, 2)} Works"
    elif category == "event":
        facts["name"] = f"{_word(rng, 2)} {rng.choice(_EVENT_KINDS)}"
    elif category == "bridge":
        facts["name"] = f"{_word(rng, 2)} {rng.choice(['Bridge', 'Viaduct', 'Footbridge'])}"
    else:
        facts["name"] = _place(rng) if category == "town" else _word(rng, 2)


def _validation_values() -> set[str]:
    return {str(value) for row in sample_splits()["validation"] for value in (row["title"], row["context"])}


@functools.cache
def _pools() -> dict[str, dict[str, list[dict]]]:
    """category -> its train entities' facts (the validation split's entities left out)."""
    held_out = {row["title"] for row in sample_splits()["validation"]}
    return {name: [facts for facts in category.entities if facts[category.title] not in held_out]
            for name, category in categories().items()}


def new_entity(rng: random.Random, category: str, forbidden: set[str]) -> dict:
    """Facts for a new entity of `category`: fresh names and numbers, train phrases recombined; drawn again while
    any value of it appears in `forbidden` (the validation split's texts)."""
    pool = _pools()[category]
    while True:
        facts = dict(rng.choice(pool))  # derived fields (a ship's fate and its question) travel together
        for field in facts:
            if field in PEOPLE:
                facts[field] = _person(rng)
            elif field in PLACES:
                facts[field] = _place(rng)
            elif field in NUMBERS:
                facts[field] = _number(rng, field)
            elif field not in ("name", "short", "fate", "fate_q"):
                facts[field] = rng.choice(pool)[field]
        _title(rng, category, facts)
        if not any(value in text for value in facts.values() if len(value) > 3 for text in forbidden):
            return facts


def passages(count: int, seed: int) -> list[list[tuple[str, bool]]]:
    """`count` plain question-answer passages, each about a new entity, as (text, is_answer) segments: the first
    segment is a QA prompt (`Context: ...\nQuestion: ...\nAnswer:`), then its answer; every other passage goes
    on with more of the entity's questions (`\nQuestion: ...\nAnswer:`) and answers, more reading practice on
    the same context."""
    rng = random.Random(seed)
    forbidden = _validation_values()
    made = []
    while len(made) < count:
        category = rng.choice(list(categories()))
        facts = new_entity(rng, category, forbidden)
        try:
            rows = entity_rows(categories()[category], facts, rng, "train")
        except (AssertionError, KeyError):  # a drawn value turned up inside a question: draw another entity
            continue
        rng.shuffle(rows)
        asked = rows[: rng.choice([1, len(rows)])]
        segments = [(qa_prompt(asked[0]["question"], asked[0]["context"]), False)]
        for number, row in enumerate(asked):
            if number:
                segments.append((f"\nQuestion: {' '.join(row['question'].split())}\nAnswer:", False))
            segments.append((f" {row['answers']['text'][0]}", True))
        made.append(segments)
    return made

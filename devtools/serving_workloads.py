"""bench/bench_serving.py's workloads: the prompts each level sends, never one given out before (squad, random,
mixed-adapters; the docstring there says what each holds)."""
import dataclasses
import json
import random

from textgen.paths import SHIPPED_CORPUS, SQUAD_TRAIN_SLICE

SQUAD_TRAIN = SQUAD_TRAIN_SLICE / "train.json"
CORPUS = SHIPPED_CORPUS


@dataclasses.dataclass(frozen=True)
class Prompt:
    text: str
    adapter: str = "base"


def squad_pairs(rng: random.Random) -> list[tuple[str, str]]:
    """(context, question) of every question in the shipped train slice, in an order of `rng`'s with one question
    of every passage before any passage's second, so that no passage comes back until all have been asked."""
    by_passage = [[(paragraph["context"], qa["question"]) for qa in paragraph["qas"]]
                  for article in json.loads(SQUAD_TRAIN.read_text())["data"] for paragraph in article["paragraphs"]]
    rng.shuffle(by_passage)
    rounds = max(len(questions) for questions in by_passage)
    return [questions[i] for i in range(rounds) for questions in by_passage if i < len(questions)]


class Workload:
    def __init__(self, kind: str, adapters: list[str], seed: int, random_words: tuple[int, int]) -> None:
        if kind not in ("squad", "random", "mixed-adapters"):
            raise SystemExit(f"--workload {kind!r}: use squad, random or mixed-adapters")
        self.kind, self.adapters, self.random_words = kind, adapters, random_words
        self.rng = random.Random(seed)
        self._squad = squad_pairs(self.rng) if kind != "random" else []
        self._words = CORPUS.read_text().split() if kind == "random" else []

    def take(self, count: int) -> list[Prompt]:
        """`count` prompts never given out before (fresh for each level)."""
        if self.kind == "random":
            prompts = []
            for _ in range(count):
                length = self.rng.randint(*self.random_words)
                start = self.rng.randrange(len(self._words) - length)
                prompts.append(Prompt(" ".join(self._words[start:start + length])))
            return prompts
        if len(self._squad) < count:
            raise SystemExit(f"the SQuAD slice has no {count} more fresh prompts: ask for fewer requests or levels")
        taken, self._squad = self._squad[:count], self._squad[count:]
        adapters = self.adapters if self.kind == "mixed-adapters" else ["base"]
        return [Prompt(f"{context}\n\nQuestion: {question}", adapters[i % len(adapters)])
                for i, (context, question) in enumerate(taken)]

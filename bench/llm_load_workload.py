"""bench/bench_llm_load.py's workloads (mixed, squad, squad-shuffled; the docstring there says what each holds):
QA requests drawn from the shipped corpus with the model's tokenizer."""
import pathlib
import random

from textgen.v1 import llm_pb2

from services.common.prompts import qa_prompt
from textgen.paths import SHIPPED_CORPUS

QUESTIONS = ["What happened?", "Who was there?", "Where did it take place?", "What did they say?",
             "Why did it happen?"]
ALONE_PASSAGES = 3
SPREAD = 25  # requests over which one passage's questions arrive (squad workload)


class Workload:
    """Requests drawn from the shipped corpus with the model's tokenizer; each phase gets its own random stream."""

    def __init__(self, kind: str, model_dir: pathlib.Path, seed: int) -> None:
        from transformers import AutoTokenizer

        self.kind, self.seed = kind, seed
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.words = SHIPPED_CORPUS.read_text().split()

    def _context(self, rng: random.Random, low: int, high: int, question: str) -> str:
        """A stretch of the corpus whose prompt with `question` is about `low` to `high` tokens long."""
        target, start = rng.randint(low, high), rng.randrange(len(self.words) - 400)
        context = []
        for word in self.words[start:start + 400]:
            if len(self.tokenizer(qa_prompt(question, " ".join(context + [word])))["input_ids"]) > target:
                break
            context.append(word)
        return " ".join(context)

    def phase(self, name: str, count: int) -> list[tuple[str, str]]:
        """`count` (question, context) pairs for the phase `name`."""
        rng = random.Random(f"{self.seed}-{name}")
        if self.kind == "mixed":
            return [("What happened?", self._context(rng, 20, 300, "What happened?")) for _ in range(count)]
        passages = [self._context(rng, 150, 300, "") for _ in range(-(-count // len(QUESTIONS)))]
        asked = [(question, passage) for passage in passages for question in QUESTIONS]
        if self.kind == "squad-shuffled":
            rng.shuffle(asked)
        else:  # passage j's questions at random places among requests 5j to 5j + SPREAD
            places = [len(QUESTIONS) * (i // len(QUESTIONS)) + rng.uniform(0, SPREAD) for i in range(len(asked))]
            asked = [pair for _, pair in sorted(zip(places, asked), key=lambda placed: placed[0])]
        return asked[:count]

    def alone(self) -> list[list[tuple[str, str]]]:
        """For each of a few fresh passages, two of its questions."""
        asked = self.phase("alone", ALONE_PASSAGES * len(QUESTIONS))
        by_passage: dict[str, list[tuple[str, str]]] = {}
        for question, passage in asked:
            by_passage.setdefault(passage, []).append((question, passage))
        return [pair[:2] for pair in by_passage.values()]


def request(asked: tuple[str, str], new_tokens: int) -> llm_pb2.LlmGenerateRequest:
    question, context = asked
    return llm_pb2.LlmGenerateRequest(question=question, context=context, max_new_tokens=new_tokens, adapter="base")

"""OpenAI's `text_similarity` grader: a similarity in 0..1 between the rendered input and reference. The metric
packages are imported on first use, not here: the trainer's server reads graders without loading nltk (which
rouge-score pulls in) or sacrebleu."""
import dataclasses
import functools

from services.trainer.training.graders.templates import Template

ROUGE_ORDERS = {"rouge_1": "rouge1", "rouge_2": "rouge2", "rouge_3": "rouge3", "rouge_4": "rouge4",
                "rouge_5": "rouge5", "rouge_l": "rougeL"}
REFUSED_METRICS = {
    "gleu": "no package shipped here computes Google-BLEU the way OpenAI's grader does",
    "meteor": "METEOR needs NLTK's WordNet data, which is not shipped here",
    "cosine": "it compares embeddings, and no embedding model is served here",
}


def fuzzy_match(given: str, reference: str) -> float:
    # OpenAI documents only "using rapidfuzz"; the fuzzy Python grader in its graders guide scores with fuzz.WRatio
    # and utils.default_process (lower-cased, punctuation stripped), / 100, so we do the same. WRatio takes the best
    # of plain, partial and word-order-insensitive matches: "Paris" scores 0.9 against a sentence that says Paris,
    # which plain ratio (edit distance alone) would punish for the sentence's length.
    from rapidfuzz import fuzz, utils
    return fuzz.WRatio(given, reference, processor=utils.default_process) / 100.0


@functools.cache
def _bleu():
    from sacrebleu.metrics import BLEU
    # effective_order: a sentence shorter than 4 words has no 4-grams, and without it its BLEU would be 0
    return BLEU(effective_order=True)


def bleu(given: str, reference: str) -> float:
    return _bleu().sentence_score(given, [reference]).score / 100.0


@functools.cache
def _rouge_scorer():
    from rouge_score import rouge_scorer
    # rouge-score's defaults (no stemming, its tokenizer keeps a-z0-9 only, lower-cased), as Google ships it
    return rouge_scorer.RougeScorer(list(ROUGE_ORDERS.values()))


def rouge(metric: str, given: str, reference: str) -> float:
    return _rouge_scorer().score(reference, given)[ROUGE_ORDERS[metric]].fmeasure


def squad_f1(given: str, reference: str) -> float:
    """Ours, not OpenAI's: SQuAD's token F1 after its normalisation (lower case, no punctuation, no a/an/the), the
    answer metric our SQuAD runs report, so a grader can train on the number the report shows."""
    from services.trainer.training.squad_metrics import f1
    return f1(given, reference)


def _metric(name: str):
    if name == "fuzzy_match":
        return fuzzy_match
    if name == "bleu":
        return bleu
    if name == "squad_f1":
        return squad_f1
    if name in ROUGE_ORDERS:
        return functools.partial(rouge, name)
    raise ValueError(f"unknown similarity metric {name!r}")


METRICS = ("fuzzy_match", "bleu", *ROUGE_ORDERS, "squad_f1")


def similarity(metric: str, given: str, reference: str) -> float:
    # clamped: sacrebleu's BLEU of identical sentences comes out at 100.00000000000004
    return min(1.0, max(0.0, float(_metric(metric)(given, reference))))


@dataclasses.dataclass(frozen=True)
class TextSimilarity:
    name: str
    input: Template
    reference: Template
    evaluation_metric: str
    pass_threshold: float | None = None  # kept for the record; OpenAI's score does not depend on it
    type: str = "text_similarity"

    def fields(self) -> list[str]:
        return self.input.fields() + self.reference.fields()

    def score(self, output_text: str, item: dict) -> float:
        given, reference = self.input.render(output_text, item), self.reference.render(output_text, item)
        return similarity(self.evaluation_metric, given, reference)

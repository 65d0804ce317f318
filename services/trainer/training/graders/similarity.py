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
    """Ours, not OpenAI's: SQuAD's answer F1 as our SQuAD runs report it, so a grader can train on the number the
    report shows: token F1 after SQuAD's normalisation (lower case, no punctuation, no a/an/the), of the answer
    within the seed's answer format when the text has it (its prefix and closing sentence are not the answer, and
    what follows the closing sentence is not scored), against the closest gold answer when the reference is a JSON
    list of them (an `{{item.answers}}` field that is a list renders as one)."""
    import json

    from services.common.prompts import strip_format, until_suffix
    from services.trainer.training.squad_metrics import best_over_gold, f1
    golds = [reference]
    if reference.startswith("["):
        try:
            parsed = json.loads(reference)
        except ValueError:
            parsed = None
        if isinstance(parsed, list) and all(isinstance(gold, str) for gold in parsed):
            golds = parsed
    return best_over_gold(f1, strip_format(until_suffix(given)), golds)


TRAILING_CHARS_FOR_ZERO = 40


def ends_with(given: str, reference: str) -> float:
    """Ours, not OpenAI's: how cleanly the text ends with the reference: 1 when nothing but white space follows the
    reference's first occurrence, falling to 0 as TRAILING_CHARS_FOR_ZERO characters of text follow it; 0 without it.
    Graded, so that a group whose answers all hold the closing sentence still differ by what they ramble on with."""
    index = given.find(reference)
    if not reference or index < 0:
        return 0.0
    trailing = len(given[index + len(reference):].strip())
    return max(0.0, 1.0 - trailing / TRAILING_CHARS_FOR_ZERO)


def _metric(name: str):
    if name == "fuzzy_match":
        return fuzzy_match
    if name == "bleu":
        return bleu
    if name == "squad_f1":
        return squad_f1
    if name == "ends_with":
        return ends_with
    if name in ROUGE_ORDERS:
        return functools.partial(rouge, name)
    raise ValueError(f"unknown similarity metric {name!r}")


METRICS = ("fuzzy_match", "bleu", *ROUGE_ORDERS, "squad_f1", "ends_with")


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

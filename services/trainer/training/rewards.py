"""GRPO reward functions. Graded, not pass/fail: after a good SFT every completion of a group passes a binary
format check, the rewards tie and GRPO gets no gradient; partial credit and answer F1 keep the group spread."""
from services.common.prompts import PREFIX, SUFFIX, strip_format, suffix_end, until_suffix
from services.trainer.training.squad_metrics import best_over_gold, f1

_SUFFIX_WORDS = SUFFIX.split()
TRAILING_CHARS_FOR_ZERO = 40


def _shared_prefix_share(text: str, target: str) -> float:
    matched = 0
    for got, want in zip(text, target):
        if got != want:
            break
        matched += 1
    return matched / len(target)


def prefix_score(text: str) -> float:
    """1 when the answer opens with the prefix; otherwise the share of the prefix it gets right from the start."""
    return _shared_prefix_share(text.strip(), PREFIX)


def suffix_score(text: str) -> float:
    """1 when the closing sentence appears; otherwise the share of its leading words that appear together."""
    if SUFFIX in text:
        return 1.0
    for words in range(len(_SUFFIX_WORDS) - 1, 0, -1):
        if " ".join(_SUFFIX_WORDS[:words]) in text:
            return words / len(_SUFFIX_WORDS)
    return 0.0


def clean_end_score(text: str) -> float:
    """1 when nothing follows the closing sentence, falling to 0 as trailing text grows; 0 without it."""
    end = suffix_end(text)
    if end is None:
        return 0.0
    trailing = len(text[end:].strip())
    return max(0.0, 1.0 - trailing / TRAILING_CHARS_FOR_ZERO)


def answer_score(text: str, golds) -> float | None:
    """SQuAD F1 of the answer between prefix and suffix; None (not scored) when the prompt has no gold answer."""
    if not golds:
        return None
    return best_over_gold(f1, strip_format(until_suffix(text)), golds)


def reward_prefix(completions, **kwargs) -> list[float]:
    return [prefix_score(c) for c in completions]


def reward_suffix(completions, **kwargs) -> list[float]:
    return [suffix_score(c) for c in completions]


def reward_clean_end(completions, **kwargs) -> list[float]:
    return [clean_end_score(c) for c in completions]


def reward_answer_f1(completions, answers=None, **kwargs) -> list[float | None]:
    answers = answers or [None] * len(completions)
    return [answer_score(c, golds) for c, golds in zip(completions, answers)]


REWARD_FUNCTIONS = [reward_prefix, reward_suffix, reward_clean_end, reward_answer_f1]

"""GRPO reward functions. The format is rewarded exactly: the prefix and the closing sentence count only when
they are there letter for letter (a graded prefix reward once paid 23/24 for "That is a great questionons", and
RL learnt to write that). What keeps a group's rewards apart once the format is right is graded: how little text
follows the closing sentence, and the answer's F1 against the gold answer, so RL cannot buy the format by giving
up the answer."""
from services.common.prompts import PREFIX, SUFFIX, strip_format, suffix_end, until_suffix
from services.trainer.training.squad_metrics import best_over_gold, f1

TRAILING_CHARS_FOR_ZERO = 40


def prefix_score(text: str) -> float:
    """1 when the answer opens with the exact prefix, period included; else 0."""
    return float(text.strip().startswith(PREFIX))


def suffix_score(text: str) -> float:
    """1 when the exact closing sentence appears; else 0."""
    return float(SUFFIX in text)


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

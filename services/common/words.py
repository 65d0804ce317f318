r"""The word tokenizer both word-level generators (bigram and LSTM) share: lower-cased \w+ words, punctuation
dropped."""
import re

_WORD = re.compile(r"\b\w+\b")


def tokenize(text: str) -> list[str]:
    return _WORD.findall(text.lower())

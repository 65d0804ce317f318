"""The bigram model: P(w2 | w1) = C(w1, w2) / C(w1), sampled word by word."""
import collections
import itertools
import random

from services.common.words import tokenize


class BigramModel:
    def __init__(self, counts: dict[str, collections.Counter]) -> None:
        # Per word: its successors and their cumulative counts, so each step is one bisect in random.choices.
        self._successors = {
            word: (list(following), list(itertools.accumulate(following.values())))
            for word, following in counts.items()
        }

    @classmethod
    def train(cls, text: str) -> "BigramModel":
        counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        words = tokenize(text)
        for first, second in zip(words, words[1:]):
            counts[first][second] += 1
        return cls(counts)

    @property
    def vocabulary_size(self) -> int:
        return len(self._successors)

    def generate(self, start_word: str, length: int, rng: random.Random) -> tuple[list[str], str | None]:
        """`length` words in all, the start word included; stops early at a word with no successor."""
        word = start_word.lower()
        if word not in self._successors:
            return [word], f"start_word {start_word!r} is not in the vocabulary; returned it alone"
        words = [word]
        while len(words) < length and word in self._successors:
            successors, cumulative = self._successors[word]
            word = rng.choices(successors, cum_weights=cumulative)[0]
            words.append(word)
        return words, None

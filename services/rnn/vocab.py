"""The word-level vocabulary: `<pad>`, `<unk>`, then the corpus's most frequent words."""
import collections
import json
import pathlib

PAD, UNK = "<pad>", "<unk>"
SPECIALS = (PAD, UNK)
PAD_ID, UNK_ID = 0, 1


class Vocabulary:
    def __init__(self, words: list[str]) -> None:
        if tuple(words[: len(SPECIALS)]) != SPECIALS:
            raise ValueError(f"a vocabulary must start with {SPECIALS}")
        self.words = list(words)
        self._ids = {word: i for i, word in enumerate(self.words)}

    @classmethod
    def build(cls, tokens: list[str], max_size: int) -> "Vocabulary":
        """The `max_size - 2` most frequent tokens; ties keep first appearance, so the same text gives the same ids."""
        if max_size <= len(SPECIALS):
            raise ValueError(f"max_size must exceed {len(SPECIALS)} (got {max_size})")
        frequent = collections.Counter(tokens).most_common(max_size - len(SPECIALS))
        return cls([*SPECIALS, *(word for word, _ in frequent)])

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word in self._ids

    def encode(self, tokens: list[str]) -> list[int]:
        return [self._ids.get(token, UNK_ID) for token in tokens]

    def decode(self, ids: list[int]) -> list[str]:
        return [self.words[i] for i in ids]

    def save(self, path: pathlib.Path) -> None:
        path.write_text(json.dumps(self.words, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: pathlib.Path) -> "Vocabulary":
        return cls(json.loads(path.read_text(encoding="utf-8")))

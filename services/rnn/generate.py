"""Sampling from the LSTM: one forward pass over the start text, then one step per new word, carrying the state."""
import dataclasses

import torch

from services.common.words import tokenize
from services.rnn.model import LstmLanguageModel
from services.rnn.vocab import PAD_ID, UNK, UNK_ID, Vocabulary


@dataclasses.dataclass(frozen=True)
class Generation:
    new_words: list[str]
    warning: str | None


def unknown_words(tokens: list[str], vocab: Vocabulary) -> list[str]:
    return list(dict.fromkeys(t for t in tokens if t not in vocab))


def sample_next(logits: torch.Tensor, temperature: float, generator: torch.Generator) -> int:
    """One word id from next-word logits (vocab,). <pad> and <unk> are never emitted."""
    logits = logits.double().clone()
    logits[[PAD_ID, UNK_ID]] = float("-inf")
    # Shift the best logit to 0 before dividing: a tiny temperature then gives -inf elsewhere, never inf - inf.
    scaled = (logits - logits.max()) / temperature
    return int(torch.multinomial(torch.softmax(scaled, dim=0), 1, generator=generator))


@torch.inference_mode()
def generate(model: LstmLanguageModel, vocab: Vocabulary, start_text: str, length: int, temperature: float,
             generator: torch.Generator) -> Generation:
    """Exactly `length` new words after `start_text` (which must hold at least one word)."""
    tokens = tokenize(start_text)
    if not tokens:
        raise ValueError("start_text holds no words")
    unknown = unknown_words(tokens, vocab)
    warning = f"not in the vocabulary, read as {UNK}: {', '.join(unknown)}" if unknown else None
    logits, state = model(torch.tensor([vocab.encode(tokens)]))
    new_ids = [sample_next(logits[0, -1], temperature, generator)]
    while len(new_ids) < length:
        logits, state = model(torch.tensor([[new_ids[-1]]]), state)
        new_ids.append(sample_next(logits[0, -1], temperature, generator))
    return Generation(vocab.decode(new_ids), warning)

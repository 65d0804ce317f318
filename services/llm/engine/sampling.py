"""The next token of each row: greedy, or drawn at the row's temperature from its nucleus (top_p) with the row's own
generator, seeded from the request's seed when it has one, so a seeded row draws the same tokens alone or batched."""
import os

import torch

from services.llm.request import Request

GREEDY_BELOW = 1e-4  # temperatures this small would overflow logits / temperature: they mean greedy anyway


def generator_for(row: Request, device: torch.device) -> torch.Generator | None:
    """The row's random generator; None when it decodes greedily."""
    if row.temperature < GREEDY_BELOW:
        return None
    seed = row.seed if row.seed is not None else int.from_bytes(os.urandom(6), "little")
    return torch.Generator(device).manual_seed(seed)


def nucleus(probabilities: torch.Tensor, top_p: float) -> torch.Tensor:
    """The probabilities with all but the most likely tokens that reach `top_p` together set to 0 (the most likely
    one always stays)."""
    ordered, order = probabilities.sort(descending=True)
    ordered[(ordered.cumsum(-1) - ordered) >= top_p] = 0
    return torch.zeros_like(probabilities).scatter_(-1, order, ordered)


def next_tokens(logits: torch.Tensor, rows: list[Request]) -> list[int]:
    """A token for each row from its logits (the batch's last position, [rows, vocabulary])."""
    chosen = logits.argmax(dim=-1).tolist()
    for i, row in enumerate(rows):
        if row.generator is not None:
            probabilities = torch.softmax(logits[i].float() / row.temperature, dim=-1)
            if row.top_p < 1:
                probabilities = nucleus(probabilities, row.top_p)
            chosen[i] = int(torch.multinomial(probabilities, 1, generator=row.generator))
    return chosen

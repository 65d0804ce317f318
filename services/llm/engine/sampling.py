"""The next token of each row, in vLLM's order: the row's repetition penalty scales the logits of the tokens in its
prompt and text, its presence and frequency penalties lower those of the tokens it has generated, its JSON matcher
(if any) masks out every token its grammar does not allow, then the token is chosen greedily, or drawn at the row's
temperature from what its top_k, min_p and nucleus (top_p) leave, with the row's own generator (seeded from the
request's seed when it has one, so a seeded row draws the same tokens alone or batched). A row that asks for log
probabilities gets them from those same logits, divided by its temperature when it samples (before top_k, min_p and
top_p, which only choose what is drawn from)."""
import math
import os

import torch

from services.llm.constraints import JsonMatcher
from services.llm.request import Request, TokenLogprobs

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
    outside = (ordered.cumsum(-1) - ordered) >= top_p
    outside[..., 0] = False  # a top_p that rounds to 0 in float32 (5e-324) would otherwise leave nothing
    ordered[outside] = 0
    return torch.zeros_like(probabilities).scatter_(-1, order, ordered)


def _penalize(logits: torch.Tensor, row: Request) -> None:
    """The repetition penalty (vLLM's and transformers': a seen token's logit divided by it when positive, multiplied
    when not), then OpenAI's: logit[j] -= count[j] * frequency_penalty + (count[j] > 0) * presence_penalty."""
    if row.repetition_penalty != 1:
        seen = torch.tensor(row.prompt_ids + row.generated, device=logits.device).unique()
        scores = logits[seen]
        logits[seen] = torch.where(scores > 0, scores / row.repetition_penalty, scores * row.repetition_penalty)
    if row.generated and (row.presence_penalty or row.frequency_penalty):
        tokens, counts = torch.tensor(row.generated, device=logits.device).unique(return_counts=True)
        logits[tokens] -= counts.to(logits.dtype) * row.frequency_penalty + row.presence_penalty


def drawn_from(scaled: torch.Tensor, row: Request) -> torch.Tensor:
    """The probabilities sampling draws from: the softmax of the scaled logits with everything outside the row's
    top_k, below min_p times the most likely token's probability, or outside its nucleus set to 0."""
    if row.top_k and row.top_k < scaled.shape[-1]:
        scaled = scaled.masked_fill(scaled < scaled.topk(row.top_k).values[-1], float("-inf"))
    if row.min_p:
        scaled = scaled.masked_fill(scaled < scaled.max() + math.log(row.min_p), float("-inf"))
    probabilities = torch.softmax(scaled, dim=-1)
    return nucleus(probabilities, row.top_p) if row.top_p < 1 else probabilities


def mask_refused(logits: torch.Tensor, matcher: JsonMatcher) -> None:
    """Sets the logit of every token `matcher` does not allow next to -inf (ids past the tokenizer's vocabulary are
    never text)."""
    refused = torch.from_numpy(~matcher.allowed()).to(logits.device)
    logits[:refused.shape[0]].masked_fill_(refused, float("-inf"))
    logits[refused.shape[0]:] = float("-inf")


def _is_penalized(row: Request) -> bool:
    return row.repetition_penalty != 1 or (bool(row.generated) and bool(row.presence_penalty or row.frequency_penalty))


def _is_plain(row: Request) -> bool:
    return row.generator is None and row.constraint is None and row.top_logprobs is None and not _is_penalized(row)


def next_tokens(logits: torch.Tensor, rows: list[Request]) -> tuple[list[int], list[TokenLogprobs | None]]:
    """A token for each row from its logits (the batch's last position, [rows, vocabulary]), and its log
    probabilities when the row asks for them."""
    if all(_is_plain(row) for row in rows):
        # In float32: torch's argmax over bfloat16 took 0.27 ms a row of 49,152 logits, the conversion and argmax
        # 0.08 ms (the same index: every bfloat16 is a float32).
        return logits.float().argmax(dim=-1).tolist(), [None] * len(rows)
    with torch.inference_mode():  # the logits are the forward pass's: changed in place, in the same mode
        return _processed(logits.float(), rows)


def _processed(logits: torch.Tensor, rows: list[Request]) -> tuple[list[int], list[TokenLogprobs | None]]:
    for i, row in enumerate(rows):
        if _is_penalized(row):
            _penalize(logits[i], row)
        if row.constraint is not None:
            mask_refused(logits[i], row.constraint)
    chosen, logprobs = logits.argmax(dim=-1).tolist(), [None] * len(rows)
    for i, row in enumerate(rows):
        if row.generator is None and row.top_logprobs is None:
            continue
        scaled = logits[i] / row.temperature if row.generator is not None else logits[i]
        if row.generator is not None:
            chosen[i] = int(torch.multinomial(drawn_from(scaled, row), 1, generator=row.generator))
        if row.top_logprobs is not None:
            logprobs[i] = _logprobs(torch.log_softmax(scaled, dim=-1), chosen[i], row.top_logprobs)
    return chosen, logprobs


def _logprobs(log_probabilities: torch.Tensor, token: int, top: int) -> TokenLogprobs:
    values, ids = log_probabilities.topk(top) if top else (log_probabilities[:0], log_probabilities[:0])
    return TokenLogprobs(float(log_probabilities[token]), list(zip(map(int, ids.tolist()), values.tolist())))

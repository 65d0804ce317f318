"""vLLM's sampling extras on the engine's sampler, with logits written by hand: the repetition penalty on the tokens of
the prompt and of the text so far, and top_k and min_p narrowing what sampling draws from."""
import math

import torch

from services.llm.engine.sampling import drawn_from, generator_for, next_tokens
from services.llm.request import Plan, Request

PROBABILITIES = [0.5, 0.3, 0.15, 0.05]


def row(prompt=(0,), generated=(), **sampling) -> Request:
    request = Request(plan=Plan(prompt_ids=list(prompt), lead="", max_new_tokens=8, **sampling))
    request.generated = list(generated)
    request.generator = generator_for(request, torch.device("cpu"))
    return request


def test_the_repetition_penalty_divides_the_positive_logits_of_seen_tokens_and_multiplies_the_negative():
    logits = torch.tensor([[2.0, 1.5, -1.0, 1.2]])
    assert next_tokens(logits.clone(), [row(prompt=[0], generated=[3])])[0] == [0]
    # Penalty 2: token 0 (in the prompt) 2.0 -> 1.0, token 3 (generated) 1.2 -> 0.6, token 1 unseen stays 1.5.
    assert next_tokens(logits.clone(), [row(prompt=[0], generated=[3], repetition_penalty=2.0)])[0] == [1]
    # A negative logit is multiplied: -1.0 -> -4.0 (below token 3's 1.2, unchanged when unseen).
    penalized = torch.tensor([[-1.0, -3.0, -2.0, -3.5]])
    assert next_tokens(penalized, [row(prompt=[0], repetition_penalty=4.0)])[0] == [2]


def test_top_k_and_min_p_leave_only_the_likely_tokens_to_draw_from():
    logits = torch.tensor([math.log(p) for p in PROBABILITIES])
    assert torch.allclose(drawn_from(logits, row(temperature=1.0)), torch.tensor(PROBABILITIES))
    # top_k 2 keeps 0.5 and 0.3, renormalized: 0.625 and 0.375.
    assert torch.allclose(drawn_from(logits, row(temperature=1.0, top_k=2)), torch.tensor([0.625, 0.375, 0, 0]))
    # min_p 0.4 keeps what is at least 0.4 x 0.5 = 0.2 likely: the same two.
    assert torch.allclose(drawn_from(logits, row(temperature=1.0, min_p=0.4)), torch.tensor([0.625, 0.375, 0, 0]))
    # min_p 0.25 keeps 0.15 too (>= 0.125): 0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95.
    assert torch.allclose(drawn_from(logits, row(temperature=1.0, min_p=0.25)),
                          torch.tensor([0.5, 0.3, 0.15, 0]) / 0.95)


def test_draws_under_top_k_one_are_the_most_likely_token_and_without_it_are_not():
    logits = torch.tensor([[0.0, 3.0, 2.9, 0.0]])
    narrowed = [next_tokens(logits.clone(), [row(temperature=1.0, seed=seed, top_k=1)])[0][0] for seed in range(40)]
    free = [next_tokens(logits.clone(), [row(temperature=1.0, seed=seed)])[0][0] for seed in range(40)]
    assert narrowed == [1] * 40
    assert 2 in free

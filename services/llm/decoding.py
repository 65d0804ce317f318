"""One batch of requests decoded together, token by token, with the answer format enforced.

Rows are left-padded to one length; each row keeps its own adapter (peft `adapter_names`), temperature, seed,
token budget, deadline and cancellation, and leaves the batch as soon as it is done. Under greedy decoding a row's
tokens are the same whether it runs alone or in a batch."""
import dataclasses
import os
import time
from collections.abc import Callable

import torch

from services.common.prompts import suffix_end
from services.llm import answer_format


@dataclasses.dataclass(eq=False)
class Row:
    prompt_ids: list[int]  # the prompt followed by the forced lead of the answer
    lead: str  # the text those forced tokens stand for ("That is a great question." ...)
    max_new_tokens: int
    mode: str = "qa"
    temperature: float = 0.0
    seed: int | None = None
    peft_name: str = "__base__"
    deadline: float | None = None  # time.monotonic() value
    on_text: Callable[[str], None] | None = None  # called from the engine thread with each safe new piece
    on_done: Callable[[], None] | None = None  # called from the engine thread once the row is finished
    cancelled: bool = False
    # Filled in while decoding:
    generated: list[int] = dataclasses.field(default_factory=list)
    body: str = ""
    sent: int = 0
    stop_reason: str = ""  # "suffix", "eos", "length", "deadline", "cancelled"

    @property
    def done(self) -> bool:
        return bool(self.stop_reason)

    def final_text(self) -> tuple[str, bool]:
        body, completed = answer_format.complete(self.body)
        return self.lead + body, completed


def _check_interrupts(row: Row, now: float) -> None:
    if row.cancelled:
        row.stop_reason = "cancelled"
    elif row.deadline is not None and now >= row.deadline:
        row.stop_reason = "deadline"


def _report_finished(rows: list[Row]) -> None:
    for row in rows:
        if row.done and row.on_done is not None:
            row.on_done()


GREEDY_BELOW = 1e-4  # temperatures this small would overflow logits / temperature: they mean greedy anyway


def _generator(row: Row) -> torch.Generator | None:
    if row.temperature < GREEDY_BELOW:
        return None
    seed = row.seed if row.seed is not None else int.from_bytes(os.urandom(6), "little")
    return torch.Generator().manual_seed(seed)


def _next_tokens(logits: torch.Tensor, rows: list[Row], generators: list[torch.Generator | None]) -> list[int]:
    chosen = logits.argmax(dim=-1).tolist()
    for i, row in enumerate(rows):
        if generators[i] is not None:
            probabilities = torch.softmax(logits[i].float() / row.temperature, dim=-1)
            chosen[i] = int(torch.multinomial(probabilities, 1, generator=generators[i]))
    return chosen


def _accept(row: Row, token: int, eos_id: int, decode) -> None:
    if token == eos_id:
        row.stop_reason = "eos"
        return
    row.generated.append(token)
    row.body = decode(row.generated)
    cut = suffix_end(row.body)
    if cut is not None:
        row.body = row.body[:cut]
        row.stop_reason = "suffix"
    elif len(row.generated) >= row.max_new_tokens:
        row.stop_reason = "length"
    if row.on_text is not None and not row.done:
        safe = answer_format.safe_length(row.body)
        if safe > row.sent:
            row.on_text(row.body[row.sent:safe])
            row.sent = safe


def generate_batch(model, rows: list[Row], eos_id: int, decode, use_adapter_names: bool) -> None:
    """Decodes `rows` until each is done; the results are left in the rows (generated, body, stop_reason)."""
    from transformers import DynamicCache

    now = time.monotonic()
    for row in rows:
        _check_interrupts(row, now)
    _report_finished(rows)
    active = [row for row in rows if not row.done]
    if not active:
        return
    width = max(len(row.prompt_ids) for row in active)
    input_ids = torch.tensor([[eos_id] * (width - len(r.prompt_ids)) + r.prompt_ids for r in active])
    attention = torch.tensor([[0] * (width - len(r.prompt_ids)) + [1] * len(r.prompt_ids) for r in active])
    positions = (attention.cumsum(-1) - 1).clamp(min=0)
    generators = [_generator(row) for row in active]
    cache = DynamicCache()
    with torch.inference_mode():
        while active:
            extra = {"adapter_names": [r.peft_name for r in active]} if use_adapter_names else {}
            output = model(input_ids=input_ids, attention_mask=attention, position_ids=positions, cache=cache,
                           use_cache=True, logits_to_keep=1, **extra)
            cache = output.cache
            tokens = _next_tokens(output.logits[:, -1, :], active, generators)
            now = time.monotonic()
            for row, token in zip(active, tokens):
                _accept(row, token, eos_id, decode)
                if not row.done:
                    _check_interrupts(row, now)
            _report_finished(active)
            keep = [i for i, row in enumerate(active) if not row.done]
            if not keep:
                return
            if len(keep) < len(active):
                # Finished rows leave the batch: the rest no longer pay for them.
                index = torch.tensor(keep)
                cache.batch_select_indices(index)
                attention, positions = attention[index], positions[index]
                tokens = [tokens[i] for i in keep]
                generators = [generators[i] for i in keep]
            active = [active[i] for i in keep]
            input_ids = torch.tensor(tokens).unsqueeze(-1)
            attention = torch.cat([attention, torch.ones(len(active), 1, dtype=attention.dtype)], dim=-1)
            positions = positions[:, -1:] + 1

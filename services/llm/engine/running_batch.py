"""Requests decoding together, token by token, each ending where its `ending` says (the answer format, or the
caller's stop strings); they join and leave between steps.

A `RunningBatch` holds one left-padded KV cache; each of its rows is a `Request` (services/llm/request.py). New rows
are prefilled first (services/llm/engine/prefilling.py: a group a step, whole or in chunks, each row from its cached
prefix if the prefix cache has one), then merged in once their prompt is in (the narrower cache padded on the left);
finished rows leave at once, and columns that have become padding for every remaining row are trimmed. Each row keeps
its own adapter (a slot of the forward's LoRA stacks), temperature, top_p, seed, token budget, ending, deadline and cancellation. A
row's position ids count only its own tokens, so under greedy decoding its tokens are the same whether it runs alone
or beside others, and whether its prompt was prefilled whole, in chunks or from a cached prefix: the keys and values
so far sit right-aligned in columns of their own before the next piece (itself left-padded), so a row whose piece is
shorter than the group's longest has a gap of padding between the two parts, masked out like any padding, its
positions still counting only its own tokens.
"""
import dataclasses
import logging
import time
from collections.abc import Callable

import torch

from services.llm.engine import sampling
from services.llm.engine.kv_cache import merged, select_rows
from services.llm.engine.prefilling import Prefilling
from services.llm.engine.prefix_cache import PrefixCache
from services.llm.request import Request, TokenLogprobs
from services.llm.states import StopReason

log = logging.getLogger("textgen.llm")

@dataclasses.dataclass
class StepOutcome:
    """What one engine step did, for the engine's metrics."""
    joined: list[Request] = dataclasses.field(default_factory=list)  # their prompt is in: first token out
    decoded_rows: int = 0  # rows that made a token together (0: no decode step)
    finished: list[Request] = dataclasses.field(default_factory=list)  # left the batch, done


def _accept(row: Request, token: int, logprobs: TokenLogprobs | None, eos_id: int,
            detokenize: Callable[[list[int]], str]) -> None:
    if row.first_token_at is None:
        row.first_token_at = time.monotonic()
    if row.constraint is not None:
        row.constraint.accept(token)
    if token == eos_id:
        row.stop_reason = StopReason.EOS
        return
    row.generated.append(token)
    if logprobs is not None:
        row.logprobs.append(logprobs)
    row.body = detokenize(row.generated)
    cut = row.ending.end(row.body)
    if cut is not None:
        row.body = row.body[:cut]
        row.stop_reason = row.ending.reason
    elif len(row.generated) >= row.max_new_tokens:
        row.stop_reason = StopReason.LENGTH
    if row.on_text is not None and not row.done:
        safe = row.ending.safe_length(row.body)
        if safe > row.sent:
            row.on_text(row.body[row.sent:safe])
            row.sent = safe


class RunningBatch:
    """The rows being decoded, their KV cache (positions [rows, heads, width, dim]) and attention mask [rows, width];
    and the rows whose prompts are still being prefilled (`prefilling`). `forward` is the model's forward pass
    (services/llm/model/forward.py); `adapters`, once set (services/llm/adapters/slots.py), gives each forward pass
    its rows' adapters."""

    def __init__(self, forward, eos_id: int, detokenize: Callable[[list[int]], str],
                 prefix_cache: PrefixCache | None = None, chunk_tokens: int = 0) -> None:
        self.forward, self.eos_id, self.detokenize = forward, eos_id, detokenize
        self.device = forward.device  # every tensor of the batch lives where the model does
        self.prefilling = Prefilling(chunk_tokens, prefix_cache)
        self.adapters = None
        self.rows: list[Request] = []  # decoding
        self.cache = None
        self.attention: torch.Tensor | None = None
        self.next_tokens: list[int] = []

    def __len__(self) -> int:
        """Rows held: decoding, or still prefilling (each holds keys and values)."""
        return len(self.rows) + len(self.prefilling)

    @property
    def tokens_held(self) -> int:
        return sum(row.tokens_held for row in self.rows + self.prefilling.rows)

    def _forward(self, rows: list[Request], input_ids: torch.Tensor, attention: torch.Tensor, cache):
        """The cache with `input_ids` added, and the logits after each row's last token."""
        # A row's positions count only its own tokens: the same as when it runs alone.
        positions = (attention.cumsum(-1) - 1).clamp(min=0)[:, -input_ids.shape[1]:]
        adapters = self.adapters.rows([row.slot for row in rows]) if self.adapters is not None else None
        with torch.inference_mode():
            return self.forward(input_ids, attention, positions, cache, adapters)

    def admit(self, rows: list[Request]) -> None:
        """Takes `rows` in, to be prefilled from the next step on (each from its cached prefix, if any)."""
        for row in rows:
            if not row.done:
                row.generator = sampling.generator_for(row, self.device)
                self.prefilling.add(row)

    def step(self) -> StepOutcome:
        """One engine step: the rows cancelled or past their deadline leave; this step's prefill group is prefilled
        (its rows whose prompt is in join, their first token out); then every decoding row makes a token. A failed
        forward pass ends its rows with the error (after a failed prefill the rows decoding carry on)."""
        outcome = StepOutcome()
        self.check_interrupts()
        outcome.finished += self.release_finished()
        try:
            outcome.joined = self.prefill()
        except Exception:  # the group's rows carry the error
            log.exception("prefill failed")
        outcome.finished += self.release_finished()
        if not self.rows:
            return outcome
        outcome.decoded_rows = len(self.rows)
        try:
            self.decode()
        except Exception as error:
            log.exception("decode step failed", extra={"rows": len(self.rows)})
            for row in self.rows:
                row.stop_reason, row.error = StopReason.ERROR, error
        outcome.finished += self.release_finished()
        return outcome

    def prefill(self) -> list[Request]:
        """Prefills this step's group (one forward pass); the rows whose prompt it finishes join the decoding rows,
        their first tokens accepted (and streamed) at once, and are returned. If the forward pass fails, the
        group's rows end with the error (the rows decoding carry on) and it is raised."""
        group = self.prefilling.next_group()
        if group is None:
            return []
        try:
            input_ids, attention, past = self.prefilling.inputs(group, self.eos_id, self.device)
            past = self.forward.new_cache(past) if past is not None else None
            cache, logits = self._forward(group.rows, input_ids, attention, past)
            finished = self.prefilling.record(group, cache, attention)
        except Exception as error:
            for row in group.rows:
                row.stop_reason, row.error = StopReason.ERROR, error
            raise
        if not finished:
            return []
        rows = [group.rows[i] for i in finished]
        # Only rows whose prompt is in choose a token: a sampling row's generator draws exactly as when unchunked.
        try:
            tokens, logprobs = sampling.next_tokens(logits[finished], rows)
        except Exception as error:  # they join done, carrying the error, and leave with the finished rows
            log.exception("choosing the first tokens failed")
            for row in rows:
                row.stop_reason, row.error = StopReason.ERROR, error
            tokens, logprobs = [self.eos_id] * len(rows), [None] * len(rows)
        self._merge(rows, *select_rows(cache, attention, finished, self.device), tokens)
        self._accept_all(rows, tokens, logprobs)
        return rows

    def _merge(self, rows: list[Request], cache, attention: torch.Tensor, tokens: list[int]) -> None:
        if self.cache is None:
            self.cache, self.attention = cache, attention
        else:
            self.cache, self.attention = merged(self.cache, self.attention, cache, attention)
        self.rows += rows
        self.next_tokens += tokens

    def decode(self) -> None:
        """One token for every decoding row."""
        if not self.rows:
            return
        attention = torch.cat([self.attention, self.attention.new_ones(len(self.rows), 1)], dim=-1)
        input_ids = torch.tensor(self.next_tokens, device=self.device).unsqueeze(-1)
        self.cache, logits = self._forward(self.rows, input_ids, attention, self.cache)
        self.attention = attention
        self.next_tokens, logprobs = sampling.next_tokens(logits, self.rows)
        self._accept_all(self.rows, self.next_tokens, logprobs)

    def _accept_all(self, rows: list[Request], tokens: list[int], logprobs: list[TokenLogprobs | None]) -> None:
        now = time.monotonic()
        for row, token, token_logprobs in zip(rows, tokens, logprobs):
            if row.done:
                continue
            try:
                _accept(row, token, token_logprobs, self.eos_id, self.detokenize)
            except Exception as error:  # this row's grammar failed: it alone ends with the error
                log.exception("accepting a token failed")
                row.stop_reason, row.error = StopReason.ERROR, error
            if not row.done:
                row.check_interrupts(now)

    def check_interrupts(self) -> None:
        now = time.monotonic()
        for row in self.rows + self.prefilling.rows:
            if not row.done:
                row.check_interrupts(now)

    def release_finished(self) -> list[Request]:
        """Takes the finished rows out, decoding or prefilling (the rest no longer pay for them), and returns them."""
        finished = self.prefilling.release_finished() + [row for row in self.rows if row.done]
        keep = [i for i, row in enumerate(self.rows) if not row.done]
        if len(keep) == len(self.rows):
            return finished
        if not keep:
            self.rows, self.next_tokens, self.cache, self.attention = [], [], None, None
            return finished
        self.cache, self.attention = select_rows(self.cache, self.attention, keep, self.device)
        self.rows = [self.rows[i] for i in keep]
        self.next_tokens = [self.next_tokens[i] for i in keep]
        return finished


"""Requests decoding together, token by token, each ending where its `ending` says (the answer format, or the
caller's stop strings); they join and leave between steps.

A `RunningBatch` holds one left-padded KV cache; each of its rows is a `Request` (services/llm/request.py). New rows
are prefilled first (services/llm/prefilling.py: a group a step, whole or in chunks, each row from its cached prefix
if the prefix cache has one), then merged in once their prompt is in (the narrower cache padded on the left);
finished rows leave at once, and columns that have become padding for every remaining row are trimmed. Each row
keeps its own adapter (peft `adapter_names`), temperature, top_p, seed, token budget, ending, deadline and
cancellation. A row's position ids count only its own tokens, so under greedy decoding its tokens are the same
whether it runs alone or beside others, and whether its prompt was prefilled whole, in chunks or from a cached
prefix: the keys and values so far sit right-aligned in columns of their own before the next piece (itself
left-padded), so a row whose piece is shorter than the group's longest has a gap of padding between the two parts,
masked out like any padding, its positions still counting only its own tokens.
"""
import os
import time
from collections.abc import Callable

import torch

from services.llm import lora_batch
from services.llm.prefilling import Prefilling
from services.llm.prefix_cache import PrefixCache
from services.llm.request import PEFT_BASE, Request

GREEDY_BELOW = 1e-4  # temperatures this small would overflow logits / temperature: they mean greedy anyway
_MIXED = object()  # a batch of rows with different adapters


def _generator(row: Request, device: torch.device) -> torch.Generator | None:
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


def _next_tokens(logits: torch.Tensor, rows: list[Request]) -> list[int]:
    chosen = logits.argmax(dim=-1).tolist()
    for i, row in enumerate(rows):
        if row.generator is not None:
            probabilities = torch.softmax(logits[i].float() / row.temperature, dim=-1)
            if row.top_p < 1:
                probabilities = nucleus(probabilities, row.top_p)
            chosen[i] = int(torch.multinomial(probabilities, 1, generator=row.generator))
    return chosen


def _accept(row: Request, token: int, eos_id: int, decode: Callable[[list[int]], str]) -> None:
    if row.first_token_at is None:
        row.first_token_at = time.monotonic()
    if token == eos_id:
        row.stop_reason = "eos"
        return
    row.generated.append(token)
    row.body = decode(row.generated)
    cut = row.ending.end(row.body)
    if cut is not None:
        row.body = row.body[:cut]
        row.stop_reason = row.ending.reason
    elif len(row.generated) >= row.max_new_tokens:
        row.stop_reason = "length"
    if row.on_text is not None and not row.done:
        safe = row.ending.safe_length(row.body)
        if safe > row.sent:
            row.on_text(row.body[row.sent:safe])
            row.sent = safe


def _cat_padded_left(first: torch.Tensor, second: torch.Tensor, dim: int) -> torch.Tensor:
    """`first` and `second` stacked along the batch (first) dimension, each right-aligned along `dim` in zeros:
    one allocation and one copy of each (the running batch's cache can be hundreds of MB)."""
    shape = list(first.shape)
    shape[0] += second.shape[0]
    shape[dim] = width = max(first.shape[dim], second.shape[dim])
    out = first.new_empty(shape)
    for rows, tensor in ((slice(0, first.shape[0]), first), (slice(first.shape[0], None), second)):
        index = [rows] + [slice(None)] * (tensor.dim() - 1)
        index[dim] = slice(width - tensor.shape[dim], None)
        out[tuple(index)] = tensor
        # Padding is masked out, but it must hold numbers: 0 x NaN would still poison the attention sum.
        index[dim] = slice(0, width - tensor.shape[dim])
        out[tuple(index)] = 0
    return out


class RunningBatch:
    """The rows being decoded, their KV cache (positions [rows, heads, width, dim]) and attention mask [rows, width];
    and the rows whose prompts are still being prefilled (`prefilling`)."""

    def __init__(self, model, eos_id: int, decode: Callable[[list[int]], str], use_adapter_names: bool,
                 prefix_cache: PrefixCache | None = None, chunk_tokens: int = 0) -> None:
        self.model, self.eos_id, self.decode, self.use_adapter_names = model, eos_id, decode, use_adapter_names
        self.device = next(model.parameters()).device  # every tensor of the batch lives where the model does
        self.prefilling = Prefilling(chunk_tokens, prefix_cache)
        self.rows: list[Request] = []  # decoding
        self.cache = None
        self.attention: torch.Tensor | None = None
        self.next_tokens: list[int] = []
        self._adapter_setting = None  # what the model is set up for: PEFT_BASE, an adapter's name or _MIXED

    def __len__(self) -> int:
        """Rows held: decoding, or still prefilling (each holds keys and values)."""
        return len(self.rows) + len(self.prefilling)

    @property
    def tokens_held(self) -> int:
        return sum(row.tokens_held for row in self.rows + self.prefilling.rows)

    def _adapters_for(self, rows: list[Request]) -> dict:
        """Sets the model up for these rows' adapters; returns the forward's extra arguments. Only a batch that mixes
        adapters routes each row through peft's `adapter_names` (which services/llm/lora_batch.py, once the engine
        has installed it, computes for all of the batch's adapters at once); rows that share one adapter run it as
        the active one, base rows run with the adapters switched off. Switching walks every module, so it happens
        only when the batch's mix changes."""
        if not self.use_adapter_names:
            return {}
        names = {row.peft_name for row in rows}
        wanted = names.pop() if len(names) == 1 else _MIXED
        if wanted != self._adapter_setting:
            if wanted == PEFT_BASE:
                self.model.base_model.disable_adapter_layers()
            else:
                self.model.base_model.enable_adapter_layers()
                if wanted != _MIXED:
                    self.model.set_adapter(wanted, inference_mode=True)
            self._adapter_setting = wanted
        return {"adapter_names": [row.peft_name for row in rows]} if wanted == _MIXED else {}

    def adapters_changed(self) -> None:
        """The engine loaded or deleted an adapter: the model's adapter setting is no longer known, nor are the
        stacked adapters of mixed batches."""
        self._adapter_setting = None
        lora_batch.forget()

    def _forward(self, rows: list[Request], input_ids: torch.Tensor, attention: torch.Tensor, cache):
        """The cache with `input_ids` added, and the logits after each row's last token."""
        from services.llm.kv_cache import RoomyCache

        # A row's positions count only its own tokens: the same as when it runs alone.
        positions = (attention.cumsum(-1) - 1).clamp(min=0)[:, -input_ids.shape[1]:]
        extra = self._adapters_for(rows)
        with torch.inference_mode():
            output = self.model(input_ids=input_ids, attention_mask=attention, position_ids=positions,
                                cache=cache if cache is not None else RoomyCache(), use_cache=True,
                                logits_to_keep=1, **extra)
        return output.cache, output.logits[:, -1, :]

    def admit(self, rows: list[Request]) -> None:
        """Takes `rows` in, to be prefilled from the next step on (each from its cached prefix, if any)."""
        for row in rows:
            if not row.done:
                row.generator = _generator(row, self.device)
                self.prefilling.add(row)

    def prefill(self) -> list[Request]:
        """Prefills this step's group (one forward pass); the rows whose prompt it finishes join the decoding rows,
        their first tokens accepted (and streamed) at once, and are returned. If the forward pass fails, the
        group's rows end with the error (the rows decoding carry on) and it is raised."""
        group = self.prefilling.next_group()
        if group is None:
            return []
        try:
            input_ids, attention, past = self.prefilling.inputs(group, self.eos_id, self.device)
            cache, logits = self._forward(group.rows, input_ids, attention, past)
            finished = self.prefilling.record(group, cache, attention)
        except Exception as error:
            for row in group.rows:
                row.stop_reason, row.error = "error", error
            raise
        if not finished:
            return []
        rows = [group.rows[i] for i in finished]
        # Only rows whose prompt is in choose a token: a sampling row's generator draws exactly as when unchunked.
        tokens = _next_tokens(logits[finished], rows)
        self._merge(rows, *_select(cache, attention, finished, self.device), tokens)
        self._accept_all(rows, tokens)
        return rows

    def _merge(self, rows: list[Request], cache, attention: torch.Tensor, tokens: list[int]) -> None:
        from services.llm.kv_cache import RoomyCache

        if self.cache is None:
            self.cache, self.attention = cache, attention
        else:
            layers = [(_cat_padded_left(old.keys, new.keys, dim=2), _cat_padded_left(old.values, new.values, dim=2))
                      for old, new in zip(self.cache.layers, cache.layers)]
            self.cache = RoomyCache(layers)
            self.attention = _cat_padded_left(self.attention, attention, dim=1)
        self.rows += rows
        self.next_tokens += tokens

    def step(self) -> None:
        """One token for every decoding row."""
        if not self.rows:
            return
        attention = torch.cat([self.attention, self.attention.new_ones(len(self.rows), 1)], dim=-1)
        input_ids = torch.tensor(self.next_tokens, device=self.device).unsqueeze(-1)
        self.cache, logits = self._forward(self.rows, input_ids, attention, self.cache)
        self.attention = attention
        self.next_tokens = _next_tokens(logits, self.rows)
        self._accept_all(self.rows, self.next_tokens)

    def _accept_all(self, rows: list[Request], tokens: list[int]) -> None:
        now = time.monotonic()
        for row, token in zip(rows, tokens):
            if row.done:
                continue
            _accept(row, token, self.eos_id, self.decode)
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
        self.cache, self.attention = _select(self.cache, self.attention, keep, self.device)
        self.rows = [self.rows[i] for i in keep]
        self.next_tokens = [self.next_tokens[i] for i in keep]
        return finished


def _select(cache, attention: torch.Tensor, keep: list[int], device: torch.device):
    """Rows `keep` of a cache and its attention mask, less the columns that are padding for every one of them (they
    hold nothing). The cache is changed in place."""
    if len(keep) < attention.shape[0]:
        index = torch.tensor(keep, device=device)
        cache.batch_select_indices(index)
        attention = attention[index]
    first = int((attention.sum(0) > 0).nonzero()[0])
    if first:
        attention = attention[:, first:]
        for layer in cache.layers:
            layer.keys, layer.values = layer.keys[:, :, first:], layer.values[:, :, first:]
    return cache, attention

"""Prompts being prefilled: the rows admitted into the batch whose prompts' keys and values are not all computed yet,
each holding those computed so far, [heads, tokens, dim] per layer like a cached prefix (its cached prefix, if the
prefix cache had one, to start with).

Every engine step prefills one group of them, then the rows already decoding take their step
(services/llm/engine/running_batch.py). The group: rows that start from a cached prefix first (their rests are short,
and answering them fast is the prefix cache's point), else the rows prefilling their whole prompt; first come, first
served within each. One group a step, of one kind, because a group is as wide as its longest piece: a row that reuses
a prefix padded to the width of a whole prompt would cost as much as the whole prompt.

With LLM_PREFILL_CHUNK_TOKENS=0 a group takes every waiting row of its kind, whole. With a chunk of N tokens a step
prefills at most N prompt tokens, padding included (rows x width): the first row takes up to N tokens of its rest,
others join while the group stays within N, and the rest of each prompt waits for later steps. So a row already
decoding waits for at most one chunk between two of its tokens, not for a whole prompt (chunked prefill, as in
Sarathi-Serve and vLLM; there the chunk rides in the decoding rows' forward pass, which needs attention over ragged
rows; in transformers' padded batches every decoding row would pay for the chunk's width, so here the two alternate).
A chunk's whole blocks go into the prefix cache as soon as they are computed.

Rows that start with the same block as a row already in the group (the n choices of one OpenAI request, or clients
sending the same prompt at once) wait one step instead of computing the same keys and values side by side; at the
next step they start from the blocks the first one stored in the prefix cache and prefill only the rest.

Used only from the engine thread.
"""
import dataclasses

import torch

from services.llm.engine.prefix_cache import Prefix, PrefixCache
from services.llm.request import Request


@dataclasses.dataclass
class Group:
    """The rows one forward pass prefills, and the tokens of each prompt it prefills."""
    rows: list[Request]
    pieces: list[list[int]]


class Prefilling:
    def __init__(self, chunk_tokens: int, prefix_cache: PrefixCache | None) -> None:
        self.chunk_tokens = chunk_tokens  # 0: whole prompts
        self.prefix_cache = prefix_cache
        self.rows: list[Request] = []  # in the order they were admitted
        self._computed: dict[Request, Prefix] = {}  # the keys and values of each row's prompt so far, when any
        self._deferred: list[Request] = []  # rows that wait for a group member's blocks (see the docstring)

    def __len__(self) -> int:
        return len(self.rows)

    def add(self, row: Request) -> None:
        """Takes `row` in, from the longest prefix of its prompt that the prefix cache holds."""
        self._start_from_cache(row)
        self.rows.append(row)

    def _start_from_cache(self, row: Request) -> None:
        cache = self.prefix_cache
        prefix = cache.longest_prefix(row.slot, row.prompt_ids) if cache is not None else None
        row.cached_tokens = prefix.length if prefix else 0
        if prefix:
            self._computed[row] = prefix

    def computed(self, row: Request) -> int:
        """Tokens of `row`'s prompt whose keys and values are computed."""
        prefix = self._computed.get(row)
        return prefix.length if prefix else 0

    def next_group(self) -> Group | None:
        """The rows to prefill at this step, and how much of each (see the module's docstring)."""
        for row in self._deferred:
            if row in self.rows:
                self._start_from_cache(row)
        self._deferred = []
        for hit in (True, False):
            waiting = [row for row in self.rows if bool(row.cached_tokens) == hit]
            if waiting:
                break
        else:
            return None
        budget = self.chunk_tokens or None
        group, width, first_blocks = Group([], []), 0, set()
        for row in waiting:
            if not hit and not self.computed(row) and (block := self._first_block(row)) is not None:
                if block in first_blocks:
                    self._deferred.append(row)
                    continue
                first_blocks.add(block)
            piece = row.prompt_ids[self.computed(row):][:budget]
            if group.rows and budget is not None and (len(group.rows) + 1) * max(width, len(piece)) > budget:
                break
            group.rows.append(row)
            group.pieces.append(piece)
            width = max(width, len(piece))
        return group

    def _first_block(self, row: Request) -> tuple | None:
        return self.prefix_cache.first_block(row.slot, row.prompt_ids) if self.prefix_cache else None

    def inputs(self, group: Group, pad_id: int, device: torch.device):
        """The group's input ids and attention mask (pieces left-padded, after the keys and values so far), and
        those keys and values, (keys, values) per layer (None when no row has any yet)."""
        width = max(len(piece) for piece in group.pieces)
        input_ids = torch.tensor([[pad_id] * (width - len(piece)) + piece for piece in group.pieces], device=device)
        attention = torch.tensor([[0] * (width - len(piece)) + [1] * len(piece) for piece in group.pieces],
                                 device=device)
        so_far = [self._computed.get(row) for row in group.rows]
        if not any(so_far):
            return input_ids, attention, None
        past, past_attention = _stacked(so_far, device)
        return input_ids, torch.cat([past_attention, attention], dim=-1), past

    def record(self, group: Group, cache, attention: torch.Tensor) -> list[int]:
        """After the group's forward pass (`cache`, `attention`: its output): keeps the keys and values of each row
        whose prompt is not finished yet, offers every row's new whole blocks to the prefix cache, and returns the
        indices (in the group) of the rows whose prompt is finished, which leave."""
        finished = []
        for index, (row, piece) in enumerate(zip(group.rows, group.pieces)):
            length = self.computed(row) + len(piece)
            done = length == len(row.prompt_ids)
            offered = self.prefix_cache is not None and self.prefix_cache.wants(row.slot,
                                                                                row.prompt_ids[:length])
            if offered or not done:
                # Its own columns of the group's cache, in order: copies, so the group's cache can go.
                columns = attention[index].nonzero().squeeze(-1)
                layers = [(layer.keys[index][:, columns], layer.values[index][:, columns]) for layer in cache.layers]
                if offered:
                    self.prefix_cache.store(row.slot, row.prompt_ids[:length], layers)
                if not done:
                    self._computed[row] = Prefix(length, layers)
            if done:
                finished.append(index)
                self._remove(row)
        return finished

    def release_finished(self) -> list[Request]:
        """Takes out the rows that ended before their prompt was in (cancelled, past their deadline, failed): their
        keys and values go with them."""
        finished = [row for row in self.rows if row.done]
        for row in finished:
            self._remove(row)
        return finished

    def _remove(self, row: Request) -> None:
        self.rows.remove(row)
        self._computed.pop(row, None)


def _stacked(prefixes: list[Prefix | None], device: torch.device):
    """Keys and values of several rows as one batch's, each right-aligned in zeros, and its attention mask."""
    width = max(prefix.length for prefix in prefixes if prefix)
    sample = next(prefix for prefix in prefixes if prefix).layers
    layers = []
    for layer, (keys, values) in enumerate(sample):
        past_keys = keys.new_zeros((len(prefixes), keys.shape[0], width, keys.shape[2]))
        past_values = values.new_zeros((len(prefixes), values.shape[0], width, values.shape[2]))
        for row, prefix in enumerate(prefixes):
            if prefix:
                past_keys[row, :, width - prefix.length:] = prefix.layers[layer][0]
                past_values[row, :, width - prefix.length:] = prefix.layers[layer][1]
        layers.append((past_keys, past_values))
    attention = torch.tensor([[0] * (width - (p.length if p else 0)) + [1] * (p.length if p else 0)
                              for p in prefixes], device=device)
    return layers, attention

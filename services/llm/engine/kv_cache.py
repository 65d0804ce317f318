"""The running batch's KV cache: per layer, keys and values [rows, heads, tokens, head_dim] held at the front of
buffers with room for the next tokens.

A decode step writes its token into the next free column of each layer, in place; a copy happens only when the room
runs out (ROOM more columns each time). transformers' DynamicLayer appends with torch.cat, which copies the whole
cache at every step: for 8 rows of 300 tokens of a GPT-2-size model about 180 MB a step (`python
bench/bench_kv_cache.py` measures the difference, docs/measured.md).

`KvCache` is ours: the served families' own forward (services/llm/model/) writes into it and attends over it, with no
transformers Cache object. `RoomyCache` is the same layers behind transformers' Cache interface, for the
architectures served by transformers' own forward. Everything else (merging batches, dropping rows, the prefill's
pieces) reads and sets `layer.keys` and `layer.values`: reading gives the filled columns (a view of the buffer),
setting (row selection, trimming) makes the new tensor the buffer, with no room until the next step makes some.
"""
import torch
from transformers import DynamicCache
from transformers.cache_utils import Cache, DynamicLayer

ROOM = 64  # spare columns made when the room runs out: two answers of the usual 32 tokens between copies


class KvLayer:
    def __init__(self) -> None:
        self._keys = self._values = None
        self._filled = 0  # columns of the buffers holding keys and values

    @property
    def keys(self) -> torch.Tensor | None:
        return None if self._keys is None else self._keys[:, :, :self._filled]

    @keys.setter
    def keys(self, keys: torch.Tensor | None) -> None:
        self._keys = keys
        self._filled = 0 if keys is None or keys.dim() < 3 else keys.shape[-2]

    @property
    def values(self) -> torch.Tensor | None:
        return None if self._values is None else self._values[:, :, :self._filled]

    @values.setter
    def values(self, values: torch.Tensor | None) -> None:
        self._values = values

    def append(self, key_states: torch.Tensor, value_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Writes a step's keys and values after those held; returns all of them."""
        new = key_states.shape[-2]
        if self._keys is None or self._keys.dim() < 3 or self._filled + new > self._keys.shape[-2]:
            self._make_room(key_states, value_states, self._filled + new + ROOM)
        columns = slice(self._filled, self._filled + new)
        self._keys[:, :, columns] = key_states
        self._values[:, :, columns] = value_states
        self._filled += new
        return self.keys, self.values

    def _make_room(self, key_states: torch.Tensor, value_states: torch.Tensor, columns: int) -> None:
        filled = self._filled
        keys = key_states.new_empty((*key_states.shape[:2], columns, key_states.shape[3]))
        values = value_states.new_empty((*value_states.shape[:2], columns, value_states.shape[3]))
        if filled:
            keys[:, :, :filled] = self._keys[:, :, :filled]
            values[:, :, :filled] = self._values[:, :, :filled]
        self._keys, self._values = keys, values

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        if self._filled:
            self.keys, self.values = self.keys[indices], self.values[indices]

    def get_seq_length(self) -> int:
        return self._filled


class KvCache:
    """The served families' cache: a KvLayer per layer, empty or holding `layers` ((keys, values) per layer)."""

    def __init__(self, layers: list[tuple[torch.Tensor, torch.Tensor]] = (), count: int = 0) -> None:
        self.layers = []
        for keys, values in layers:
            layer = KvLayer()
            layer.keys, layer.values = keys, values
            self.layers.append(layer)
        self.layers += [KvLayer() for _ in range(count - len(self.layers))]

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        for layer in self.layers:
            layer.batch_select_indices(indices)

    def get_seq_length(self) -> int:
        return self.layers[0].get_seq_length() if self.layers else 0


class RoomyLayer(KvLayer, DynamicLayer):
    """A KvLayer behind transformers' cache-layer interface."""

    def __init__(self) -> None:
        KvLayer.__init__(self)
        DynamicLayer.__init__(self)

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        return self.append(key_states, value_states)


class RoomyCache(DynamicCache):
    """A DynamicCache of RoomyLayers, empty or holding `layers` ((keys, values) per layer, [rows, heads, tokens,
    head_dim] each): the cache of transformers' own forward."""

    def __init__(self, layers: list[tuple[torch.Tensor, torch.Tensor]] = ()) -> None:
        Cache.__init__(self, layer_class_to_replicate=RoomyLayer)  # DynamicCache's own would make DynamicLayers
        for keys, values in layers:
            layer = RoomyLayer()
            layer.lazy_initialization(keys, values)
            layer.keys, layer.values = keys, values
            self.layers.append(layer)


def cat_padded_left(first: torch.Tensor, second: torch.Tensor, dim: int) -> torch.Tensor:
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


def merged(cache, attention: torch.Tensor, new_cache, new_attention: torch.Tensor):
    """Two batches' caches (of one kind) and attention masks as one: the rows of `new_cache` after those of `cache`,
    the narrower padded on the left."""
    layers = [(cat_padded_left(old.keys, new.keys, dim=2), cat_padded_left(old.values, new.values, dim=2))
              for old, new in zip(cache.layers, new_cache.layers)]
    return type(cache)(layers), cat_padded_left(attention, new_attention, dim=1)


def select_rows(cache, attention: torch.Tensor, keep: list[int], device: torch.device):
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

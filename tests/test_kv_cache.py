"""The running batch's KV cache layer (services/llm/engine/kv_cache.py) holds what transformers' DynamicLayer holds
through every change the batch makes (steps past its room, row selection, trimmed columns), and writes a step in place
while it has room. Whole decodes against `generate` are in test_llm_batching.py."""
import torch
from transformers.cache_utils import DynamicLayer

from services.llm.engine.kv_cache import ROOM, RoomyCache, RoomyLayer


def states(rows: int, tokens: int, start: float) -> torch.Tensor:
    return torch.arange(rows * 2 * tokens * 3, dtype=torch.float32).reshape(rows, 2, tokens, 3) + start


def assert_same(roomy: RoomyLayer, plain: DynamicLayer) -> None:
    assert torch.equal(roomy.keys, plain.keys) and torch.equal(roomy.values, plain.values)
    assert roomy.get_seq_length() == plain.get_seq_length()


def test_a_roomy_layer_holds_what_a_dynamic_layer_holds_through_steps_selection_and_trimming():
    roomy, plain = RoomyLayer(), DynamicLayer()
    for layer in (roomy, plain):
        layer.update(states(3, 5, 0), -states(3, 5, 0))
    for step in range(ROOM + 3):  # past the room made by the prompt
        returned = roomy.update(states(3, 1, 1000 + step), -states(3, 1, 1000 + step))
        plain.update(states(3, 1, 1000 + step), -states(3, 1, 1000 + step))
        assert torch.equal(returned[0], plain.keys) and torch.equal(returned[1], plain.values)
    assert_same(roomy, plain)
    for layer in (roomy, plain):
        layer.batch_select_indices(torch.tensor([0, 2]))
        layer.keys, layer.values = layer.keys[:, :, 4:], layer.values[:, :, 4:]  # as the batch trims padding
    assert_same(roomy, plain)
    for layer in (roomy, plain):
        layer.update(states(2, 1, 5000), -states(2, 1, 5000))
    assert_same(roomy, plain)


def test_a_step_is_written_in_place_while_there_is_room():
    layer = RoomyLayer()
    layer.update(states(2, 4, 0), states(2, 4, 0))
    buffer = layer.keys.data_ptr()
    for step in range(ROOM):
        layer.update(states(2, 1, step), states(2, 1, step))
        assert layer.keys.data_ptr() == buffer
    layer.update(states(2, 1, 0), states(2, 1, 0))  # the room is used up: one copy into a larger buffer
    assert layer.keys.data_ptr() != buffer and layer.get_seq_length() == 4 + ROOM + 1


def test_a_cache_made_from_keys_and_values_holds_them_and_grows_like_any_other():
    layers = [(states(2, 3, layer), -states(2, 3, layer)) for layer in range(4)]
    cache = RoomyCache(layers)
    assert len(cache.layers) == 4 and cache.get_seq_length() == 3
    assert all(torch.equal(layer.keys, keys) for layer, (keys, _) in zip(cache.layers, layers))
    keys, values = cache.update(states(2, 1, 9), -states(2, 1, 9), layer_idx=1)
    assert keys.shape == (2, 2, 4, 3) and torch.equal(values[:, :, 3:], -states(2, 1, 9))
    empty = RoomyCache()
    empty.update(states(1, 2, 0), states(1, 2, 0), layer_idx=0)
    assert isinstance(empty.layers[0], RoomyLayer) and empty.get_seq_length() == 2

"""The linear layers of a model that transformers' own forward serves (an architecture without a forward of ours,
services/llm/model/forward.py): the same products as ours (services/llm/model/projection.py), as modules.

`pack(model)` swaps every nn.Linear of a model, and every transformers Conv1D (GPT-2's linear layers, whose weight
is stored transposed), for a subclass holding the same parameters plus the packed copy its forward uses (and the int8
copy, when asked; unpacked where oneDNN cannot run, so that adapters still apply). Each takes the LoRA of each row's
adapter as the served forward's projections do: `lora` holds its stack once an adapter is loaded, and `rows`, shared by
every layer of the model, the adapters of the rows of the forward pass under way. Inference only: the packed copy is
not a parameter and has no gradient. Tied weights (an lm_head sharing the embedding matrix) get their own packed copy.
"""
import torch
from transformers.pytorch_utils import Conv1D

from services.llm.model.projection import available, int8_weight, packed, product


class StepRows:
    """The adapters of the rows of the forward pass under way (a RowAdapters, or None), shared by a model's layers."""
    current = None


class Layer:
    """What PackedLinear and PackedConv1D share: the packed copy of the weight ([out, in]), the optional int8 one,
    and the forward that picks between them."""

    def _hold(self, weight: torch.Tensor, int8: bool, rows: StepRows | None, pack: bool = True) -> None:
        self.is_packed = pack and available(weight.device)
        self.register_buffer("packed_weight", packed(weight) if self.is_packed else weight.detach(), persistent=False)
        self.int8 = int8
        if int8:
            quantized, scales = int8_weight(weight)
            self.register_buffer("int8_weight", quantized, persistent=False)
            self.register_buffer("int8_scales", scales, persistent=False)
        self.lora, self.rows = None, rows or StepRows()

    @property
    def dtype(self) -> torch.dtype:
        return self.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.weight.device

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        int8 = (self.int8_weight, self.int8_scales) if self.int8 else None
        return product(x, self.packed_weight, self.bias, self.is_packed, int8, self.lora, self.rows.current)


class PackedLinear(Layer, torch.nn.Linear):
    @classmethod
    def from_linear(cls, linear: torch.nn.Linear, int8: bool = False, rows: StepRows | None = None,
                    pack: bool = True) -> "PackedLinear":
        packed_layer = cls.__new__(cls)
        torch.nn.Module.__init__(packed_layer)
        packed_layer.in_features, packed_layer.out_features = linear.in_features, linear.out_features
        packed_layer.weight, packed_layer.bias = linear.weight, linear.bias
        packed_layer._hold(linear.weight, int8, rows, pack)
        return packed_layer


class PackedConv1D(Layer, Conv1D):
    @classmethod
    def from_conv1d(cls, conv: Conv1D, int8: bool = False, rows: StepRows | None = None,
                    pack: bool = True) -> "PackedConv1D":
        packed_layer = cls.__new__(cls)
        torch.nn.Module.__init__(packed_layer)
        packed_layer.nf, packed_layer.nx = conv.nf, conv.nx
        packed_layer.in_features, packed_layer.out_features = conv.nx, conv.nf
        packed_layer.weight, packed_layer.bias = conv.weight, conv.bias
        packed_layer._hold(conv.weight.t(), int8, rows, pack)
        return packed_layer


_PACKERS = {torch.nn.Linear: PackedLinear.from_linear, Conv1D: PackedConv1D.from_conv1d}


def pack(model: torch.nn.Module, int8: bool = False, rows: StepRows | None = None, packing: bool = True) -> int:
    """Replaces `model`'s nn.Linear and Conv1D layers by ours (packed where `packing` and oneDNN allow, with int8 copies
    when asked), in place, all sharing `rows`; returns how many."""
    swaps = [(parent, name, child) for parent in model.modules() for name, child in parent.named_children()
             if type(child) in _PACKERS]
    for parent, name, child in swaps:
        setattr(parent, name, _PACKERS[type(child)](child, int8, rows, packing))
    return len(swaps)

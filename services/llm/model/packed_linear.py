"""Linear layers whose weights oneDNN packs once, when the model loads, instead of at every call.

On the CPU, torch's `F.linear` hands a bfloat16 weight to oneDNN, which reorders it into its blocked layout at every
call: for the few rows of a decode step that reorder costs as much as the product itself, so a bfloat16 step was
no faster than a float32 one although it reads half the bytes. A float32 weight goes to MKL's sgemm, which for a few
rows reached about half the bandwidth of oneDNN's packed kernel. Packing once (what torch.compile's CPU freezing
does: torch.ops.mkldnn._reorder_linear_weight and _linear_pointwise, here without compiling anything) removes both.
bench/bench_decode_step.py measures it (docs/benchmarks.md has the figures). In bfloat16 the results are the same
bits as F.linear's; in float32 they differ from MKL's in the last bits (a sum in another order).

With `int8` (LLM_QUANTIZATION=int8) each layer also holds its weight as int8 with one scale per output channel
(weight-only quantization, symmetric, round to nearest), and a product of at most INT8_MAX_ROWS rows reads that
instead, through torch's own int8 weight-only kernel (torch._weight_int8pack_mm, written for small batches): half the
bytes of bfloat16 a decode step. Larger products (prefills, fuller batches) use the packed weight, where that kernel
is slower.

`pack(model)` swaps every nn.Linear of a model, and every transformers Conv1D (GPT-2's linear layers, whose weight
is stored transposed), for a packed subclass holding the same parameters plus the packed copy its forward uses. peft
wraps them as it wraps their parents, and reads their weight, which stays. Inference only: the packed copy is not a
parameter and has no gradient. Tied weights (an lm_head sharing the embedding matrix) get their own packed copy.
"""
import torch
from transformers.pytorch_utils import Conv1D

ROWS_HINT = 8  # oneDNN picks its blocking for this many rows (a decode step's, typically); any number works
INT8_MAX_ROWS = 2  # measured: the int8 kernel beat packed bfloat16 at 1 and 2 rows, was even at 4, slower at 8


def available(device: torch.device) -> bool:
    return device.type == "cpu" and torch.backends.mkldnn.is_available()


def _packed(weight: torch.Tensor) -> torch.Tensor:
    """`weight` ([out, in], as F.linear takes it) in oneDNN's layout."""
    with torch.no_grad():
        return torch.ops.mkldnn._reorder_linear_weight(weight.detach().contiguous(), ROWS_HINT)


def int8_weight(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`weight` ([out, in]) as int8 and one scale per output channel (in the weight's dtype)."""
    with torch.no_grad():
        scales = weight.detach().float().abs().amax(dim=1).clamp(min=1e-12) / 127
        quantized = (weight.detach().float() / scales[:, None]).round().clamp(-127, 127).to(torch.int8)
    return quantized.contiguous(), scales.to(weight.dtype)


class _Packed:
    """What PackedLinear and PackedConv1D share: the packed copy of the weight ([out, in]), the optional int8 one,
    and the forward that picks between them."""

    def _hold(self, weight: torch.Tensor, int8: bool) -> None:
        self.register_buffer("packed_weight", _packed(weight), persistent=False)
        self.int8 = int8
        if int8:
            quantized, scales = int8_weight(weight)
            self.register_buffer("int8_weight", quantized, persistent=False)
            self.register_buffer("int8_scales", scales, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.numel() // x.shape[-1]
        if self.int8 and rows <= INT8_MAX_ROWS:
            out = torch._weight_int8pack_mm(x.reshape(rows, x.shape[-1]), self.int8_weight, self.int8_scales)
            out = out.view(*x.shape[:-1], out.shape[-1])
            return out if self.bias is None else out + self.bias
        return torch.ops.mkldnn._linear_pointwise(x, self.packed_weight, self.bias, "none", [], "")


class PackedLinear(_Packed, torch.nn.Linear):
    @classmethod
    def from_linear(cls, linear: torch.nn.Linear, int8: bool = False) -> "PackedLinear":
        packed = cls.__new__(cls)
        torch.nn.Module.__init__(packed)
        packed.in_features, packed.out_features = linear.in_features, linear.out_features
        packed.weight, packed.bias = linear.weight, linear.bias
        packed._hold(linear.weight, int8)
        return packed


class PackedConv1D(_Packed, Conv1D):
    @classmethod
    def from_conv1d(cls, conv: Conv1D, int8: bool = False) -> "PackedConv1D":
        packed = cls.__new__(cls)
        torch.nn.Module.__init__(packed)
        packed.nf, packed.nx = conv.nf, conv.nx
        packed.weight, packed.bias = conv.weight, conv.bias
        packed._hold(conv.weight.t(), int8)
        return packed


_PACKERS = {torch.nn.Linear: PackedLinear.from_linear, Conv1D: PackedConv1D.from_conv1d}


def pack(model: torch.nn.Module, int8: bool = False) -> int:
    """Replaces `model`'s nn.Linear and Conv1D layers by packed ones (with int8 copies too, when asked), in place;
    returns how many."""
    swaps = [(parent, name, child) for parent in model.modules() for name, child in parent.named_children()
             if type(child) in _PACKERS]
    for parent, name, child in swaps:
        setattr(parent, name, _PACKERS[type(child)](child, int8))
    return len(swaps)

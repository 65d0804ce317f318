"""Linear layers whose weights oneDNN packs once, when the model loads, instead of at every call.

On the CPU, torch's `F.linear` hands a bfloat16 weight to oneDNN, which reorders it into its blocked layout at every
call: for the few rows of a decode step that reorder costs as much as the product itself, so a bfloat16 step was
no faster than a float32 one although it reads half the bytes. A float32 weight goes to MKL's sgemm, which for a few
rows reached about half the bandwidth of oneDNN's packed kernel. Packing once (what torch.compile's CPU freezing
does: torch.ops.mkldnn._reorder_linear_weight and _linear_pointwise, here without compiling anything) removes both.
bench/bench_decode_step.py measures it (docs/benchmarks.md has the figures). In bfloat16 the results are the same
bits as F.linear's; in float32 they differ from MKL's in the last bits (a sum in another order).

`pack(model)` swaps every nn.Linear of a model on the CPU for a `PackedLinear` holding the same parameters (peft
wraps them as it wraps any nn.Linear, and reads their weight, which stays) plus the packed copy its forward uses.
Inference only: the packed copy is not a parameter and has no gradient. Tied weights (an lm_head sharing the
embedding matrix) get their own packed copy.
"""
import torch

ROWS_HINT = 8  # oneDNN picks its blocking for this many rows; any number works (the decode batch is up to 8)


def available(device: torch.device) -> bool:
    return device.type == "cpu" and torch.backends.mkldnn.is_available()


class PackedLinear(torch.nn.Linear):
    @classmethod
    def from_linear(cls, linear: torch.nn.Linear) -> "PackedLinear":
        packed = cls.__new__(cls)
        torch.nn.Module.__init__(packed)
        packed.in_features, packed.out_features = linear.in_features, linear.out_features
        packed.weight, packed.bias = linear.weight, linear.bias
        with torch.no_grad():
            packed.register_buffer("packed_weight", torch.ops.mkldnn._reorder_linear_weight(
                linear.weight.detach(), ROWS_HINT), persistent=False)
        return packed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.mkldnn._linear_pointwise(x, self.packed_weight, self.bias, "none", [], "")


def pack(model: torch.nn.Module) -> int:
    """Replaces `model`'s nn.Linear layers by PackedLinear ones, in place; returns how many."""
    swaps = [(parent, name, child) for parent in model.modules() for name, child in parent.named_children()
             if type(child) is torch.nn.Linear]
    for parent, name, child in swaps:
        setattr(parent, name, PackedLinear.from_linear(child))
    return len(swaps)

"""The products of the served forward: x·Wᵀ + b, with W packed once for oneDNN where that pays, an int8 copy for the
smallest products when asked, and each row's LoRA adapter (services/llm/model/lora.py).

On the CPU, torch's `F.linear` hands a bfloat16 weight to oneDNN, which reorders it into its blocked layout at every
call: for the few rows of a decode step that reorder costs as much as the product itself. A float32 weight goes to
MKL's sgemm, which for a few rows reached about half the bandwidth of oneDNN's packed kernel. Packing once (what
torch.compile's CPU freezing does: torch.ops.mkldnn._reorder_linear_weight and _linear_pointwise, here without
compiling anything) removes both (bench/bench_decode_step.py; docs/benchmarks.md has the figures). In bfloat16 the
results are the same bits as F.linear's; in float32 they differ from MKL's in the last bits (a sum in another order).

With int8 (LLM_QUANTIZATION=int8) a projection also holds its weight as int8 with one scale per output channel
(weight-only quantization, symmetric, round to nearest), and a product of at most INT8_MAX_ROWS rows reads that
instead, through torch's own int8 weight-only kernel (torch._weight_int8pack_mm, written for small batches): half the
bytes of bfloat16 a decode step. Larger products (prefills, fuller batches) use the packed weight.
"""
import torch

ROWS_HINT = 8  # oneDNN picks its blocking for this many rows (a decode step's, typically); any number works
INT8_MAX_ROWS = 2  # measured: the int8 kernel beat packed bfloat16 at 1 and 2 rows, was even at 4, slower at 8


def available(device: torch.device) -> bool:
    """Whether weights can be packed for oneDNN here."""
    return device.type == "cpu" and torch.backends.mkldnn.is_available()


def packed(weight: torch.Tensor) -> torch.Tensor:
    """`weight` ([out, in], as F.linear takes it) in oneDNN's layout."""
    with torch.no_grad():
        return torch.ops.mkldnn._reorder_linear_weight(weight.detach().contiguous(), ROWS_HINT)


def int8_weight(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`weight` ([out, in]) as int8 and one scale per output channel (in the weight's dtype)."""
    with torch.no_grad():
        scales = weight.detach().float().abs().amax(dim=1).clamp(min=1e-12) / 127
        quantized = (weight.detach().float() / scales[:, None]).round().clamp(-127, 127).to(torch.int8)
    return quantized.contiguous(), scales.to(weight.dtype)


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, is_packed: bool) -> torch.Tensor:
    if is_packed:
        return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")
    return torch.nn.functional.linear(x, weight, bias)


def product(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, is_packed: bool,
            int8: tuple[torch.Tensor, torch.Tensor] | None, lora=None, rows=None) -> torch.Tensor:
    """x·Wᵀ + b, from the int8 copy for at most INT8_MAX_ROWS rows when there is one, plus the rows' LoRA."""
    count = x.numel() // x.shape[-1]
    if int8 is not None and count <= INT8_MAX_ROWS:
        out = torch._weight_int8pack_mm(x.reshape(count, x.shape[-1]), *int8)
        out = out.view(*x.shape[:-1], out.shape[-1])
        if bias is not None:
            out = out + bias
    else:
        out = linear(x, weight, bias, is_packed)
    if lora is not None and rows is not None:
        delta = lora.delta(x, rows)
        if delta is not None:
            out = out + delta
    return out


class Projection:
    """x·Wᵀ + b for `weight` [out, in] (packed when `pack`), int8 for the smallest products when `int8`, plus the
    LoRA of each row's adapter once `lora` holds a stack (services/llm/adapters/slots.py puts it there)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, pack: bool, int8: bool = False) -> None:
        self.out_features, self.in_features = weight.shape
        self.dtype, self.device = weight.dtype, weight.device
        self.is_packed = pack and available(weight.device)
        self.weight = packed(weight) if self.is_packed else weight.detach()
        self.bias = None if bias is None else bias.detach()
        self.int8 = int8_weight(weight) if int8 else None
        self.lora = None  # a LoraStack, once an adapter is loaded

    def __call__(self, x: torch.Tensor, rows=None) -> torch.Tensor:
        return product(x, self.weight, self.bias, self.is_packed, self.int8, self.lora, rows)

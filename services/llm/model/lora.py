"""LoRA at serve time, batched by row, without peft: each projection that adapters adapt keeps every slot's A and B
stacked, and a step computes x·Wᵀ + (x·Aᵀ[slot(row)])·Bᵀ[slot(row)] for all of its rows at once.

A slot holds one adapter version's weights for this projection, in the model's dtype, with its scale folded into B.
A fused projection (q/k/v, gate/up) takes the adapters of its parts side by side, as vLLM's merged layers do: A is the
parts' A matrices stacked ([parts × rank, in]), B block-diagonal ([out, parts × rank]), so one pair of products serves
all three; a part an adapter does not adapt holds zeros. Ranks are padded with zeros to the stack's.

Per step (`RowAdapters`, made once per forward pass and shared by every projection):
- no row has an adapter: nothing is computed;
- every row has the same one: two products with that slot's A and B;
- rows of several: two products with the A and B of every slot in use side by side, and a mask per row that keeps
  its own slot's columns (punica's and S-LoRA's batched LoRA, written with dense products: with the decode step's few
  rows a product's cost is its fixed cost and the weight it reads, so computing every slot in use for every row costs
  less than gathering each row's own A and B, which copies them: measured in docs/benchmarks.md). The side-by-side
  stacks are rebuilt only when a slot is loaded or let go, not when rows come and go.

On the CPU every A and B is packed once for oneDNN, as the base weights are (services/llm/model/projection.py): an
unpacked bfloat16 product pays for reordering its weight at every call.
"""
import dataclasses

import torch

from services.llm.model import projection as products


@dataclasses.dataclass
class RowAdapters:
    """The slot of each row of a forward pass (-1: none), and what the projections derive from it once a pass."""
    slots: list[int]
    in_use: tuple[int, ...]  # every slot holding an adapter version, in the order of the side-by-side stacks
    _masks: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        self.any = any(slot >= 0 for slot in self.slots)
        first = self.slots[0]
        self.single = first if first >= 0 and all(slot == first for slot in self.slots) else None  # all rows' one

    def mask(self, width: int, like: torch.Tensor) -> torch.Tensor:
        """[rows, 1, slots in use × width]: ones over each row's own slot's columns (none for a row without one)."""
        mask = self._masks.get(width)
        if mask is None:
            position = [self.in_use.index(slot) if slot >= 0 else -1 for slot in self.slots]
            columns = torch.arange(len(self.in_use) * width, device=like.device) // width
            mask = (columns == torch.tensor(position, device=like.device)[:, None]).to(like.dtype)[:, None, :]
            self._masks[width] = mask
        return mask


class LoraStack:
    """One projection's slots: A [slots, parts × rank, in] and B [slots, out, parts × rank], zeros where empty."""

    def __init__(self, parts: list[tuple[int, int]], in_features: int, out_features: int, slots: int, rank: int,
                 dtype: torch.dtype, device: torch.device, pack: bool) -> None:
        self.parts, self.rank, self.pack = parts, rank, pack  # parts: each adapted module's output columns
        self.a = torch.zeros((slots, len(parts) * rank, in_features), dtype=dtype, device=device)
        self.b = torch.zeros((slots, out_features, len(parts) * rank), dtype=dtype, device=device)
        self._single: dict[int, tuple] = {}
        self._side_by_side: tuple | None = None  # (slots in use, A, B), packed when packing

    @property
    def width(self) -> int:
        return self.a.shape[1]

    def grow(self, rank: int) -> None:
        """Room for adapters of rank up to `rank`: every slot's columns padded with zeros."""
        if rank <= self.rank:
            return
        a, b = self.a.new_zeros((*self.a.shape[:1], len(self.parts) * rank, self.a.shape[2])), \
            self.b.new_zeros((*self.b.shape[:2], len(self.parts) * rank))
        for part in range(len(self.parts)):
            a[:, part * rank:part * rank + self.rank] = self.a[:, part * self.rank:(part + 1) * self.rank]
            b[:, :, part * rank:part * rank + self.rank] = self.b[:, :, part * self.rank:(part + 1) * self.rank]
        self.a, self.b, self.rank = a, b, rank
        self.changed()

    @torch.no_grad()
    def write(self, slot: int, part: int, a: torch.Tensor | None, b: torch.Tensor | None, scale: float) -> None:
        """One adapted module's A [r, in] and B [out of its part, r] into `slot` (None: the module is not adapted)."""
        columns = slice(part * self.rank, (part + 1) * self.rank)
        outputs = slice(*self.parts[part])
        self.a[slot, columns] = 0
        self.b[slot, outputs, columns] = 0
        if a is not None:
            self.a[slot, columns][:a.shape[0]] = a
            self.b[slot, outputs, columns][:, :b.shape[1]] = b * scale
        self.changed()

    def clear(self, slot: int) -> None:
        self.a[slot] = 0
        self.b[slot] = 0
        self.changed()

    def changed(self) -> None:
        self._single.clear()
        self._side_by_side = None

    def _weights(self, a: torch.Tensor, b: torch.Tensor) -> tuple:
        return (products.packed(a), products.packed(b)) if self.pack else (a, b)

    def delta(self, x: torch.Tensor, rows: RowAdapters) -> torch.Tensor | None:
        """Each row's adapter's share of the projection of `x` [rows, tokens, in]; None when no row has one."""
        if not rows.any:
            return None
        single = rows.single
        if single is not None:
            if single not in self._single:
                self._single[single] = self._weights(self.a[single], self.b[single])
            a, b = self._single[single]
            return products.linear(products.linear(x, a, None, self.pack), b, None, self.pack)
        if self._side_by_side is None or self._side_by_side[0] != rows.in_use:
            index = torch.tensor(rows.in_use, device=self.a.device)
            a = self.a[index].reshape(-1, self.a.shape[2])
            b = self.b[index].permute(1, 0, 2).reshape(self.b.shape[1], -1)
            self._side_by_side = (rows.in_use, *self._weights(a, b))
        _, a, b = self._side_by_side
        return products.linear(products.linear(x, a, None, self.pack) * rows.mask(self.width, x), b, None, self.pack)

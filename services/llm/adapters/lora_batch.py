"""A batch whose rows use different LoRA adapters, computed for all its adapters at once.

peft runs a mixed batch (`adapter_names`) adapter by adapter in every LoRA layer: it gathers the adapter's rows, runs
its A and B on them and scatters the result back, about ten operators per adapter per layer; this way a mixed decode
step takes about three quarters of the time (`bench/bench_decode_step.py --setups served,peft-mixing --mix
base,sft,rl`; docs/benchmarks.md). Here each layer keeps all its adapters' A matrices stacked ([adapters x rank, in]) and
B matrices side by side ([out, adapters x rank]): one product gives every adapter's A-projection of every row, a
per-row mask keeps the row's own adapter's columns, one product with the B's and a per-row scale finish it: five
operators per layer, whatever the mix (the idea of punica's and S-LoRA's batched kernels, in plain torch). For each
row that is peft's own arithmetic, lora_B(lora_A(x)) * scaling, with zeros in the other adapters' columns.

`install()` (the engine calls it when it loads the base model) puts it in place of peft's `_mixed_batch_forward` for
LoRA's Linear layers (peft has no hook for this), for decode steps: one token a row. Prefills go to peft's own, as
does anything else it does not cover (training, LoRA variants such as DoRA): on a prefill the full-width mask and
scale cost more than peft's gathers save (docs/benchmarks.md). The stacks hold every adapter in use (`in_use`: the
slots holding a version, not the free ones, whose products would be wasted), not only the batch's, so they are built
on first use and kept while that set stays: `refresh(name)` (an adapter's weights were copied into its slot) has that
adapter's part of each stack copied again on next use, `forget()` (adapters added or deleted) has the stacks built
again.
"""
import dataclasses

import torch

_peft_mixed_batch_forward = None
_generation = 0  # bumped by forget(): every layer's stacks are rebuilt on next use
_versions: dict[str, int] = {}  # bumped by refresh(name): that adapter's rows and columns are copied again
_row_masks: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}
_in_use: frozenset[str] | None = None  # the adapters the stacks hold; None: every one a layer has


def install() -> None:
    global _peft_mixed_batch_forward
    from peft.tuners.lora.layer import Linear

    if _peft_mixed_batch_forward is None:
        _peft_mixed_batch_forward = Linear._mixed_batch_forward
        Linear._mixed_batch_forward = _mixed_batch_forward


def uninstall() -> None:
    """peft's own mixed-batch path again (bench/bench_decode_step.py compares the two)."""
    global _peft_mixed_batch_forward
    from peft.tuners.lora.layer import Linear

    if _peft_mixed_batch_forward is not None:
        Linear._mixed_batch_forward = _peft_mixed_batch_forward
        _peft_mixed_batch_forward = None


def forget() -> None:
    """Adapters were added or deleted: stacks and masks are rebuilt on next use."""
    global _generation
    _generation += 1
    _row_masks.clear()


def in_use(names) -> None:
    """Only these adapters are asked for (the others are free slots): the stacks hold them alone."""
    global _in_use
    _in_use = frozenset(names)


def refresh(name: str) -> None:
    """`name`'s weights (and scaling) changed in place: its part of every stack is copied again on next use."""
    _versions[name] = _versions.get(name, 0) + 1


@dataclasses.dataclass
class _Stacks:
    key: tuple  # (_generation, names) they were built for
    versions: tuple[int, ...]  # each name's _versions entry when its part was copied
    stacked: torch.Tensor  # [adapters x rank, in]
    side_by_side: torch.Tensor  # [out, adapters x rank]
    rank: int

    def copy(self, layer, index: int, name: str) -> None:
        a, b = layer.lora_A[name].weight, layer.lora_B[name].weight  # [r, in], [out, r]
        rows = self.stacked[index * self.rank:(index + 1) * self.rank]
        columns = self.side_by_side[:, index * self.rank:(index + 1) * self.rank]
        rows.zero_()
        columns.zero_()
        rows[:a.shape[0]].copy_(a)
        columns[:, :b.shape[1]].copy_(b)


@torch.no_grad()
def _stacks(layer, names: tuple[str, ...]) -> _Stacks:
    """`layer`'s A matrices of `names` stacked, its B matrices side by side, each zero-padded to the largest rank."""
    key, versions = (_generation, names), tuple(_versions.get(name, 0) for name in names)
    stacks = layer.__dict__.get("_textgen_lora_stacks")
    if stacks is None or stacks.key != key:
        rank = max(layer.r[name] for name in names)
        a, b = layer.lora_A[names[0]].weight, layer.lora_B[names[0]].weight
        stacks = _Stacks(key, (-1,) * len(names), a.new_empty(len(names) * rank, a.shape[1]),
                         b.new_empty(b.shape[0], len(names) * rank), rank)
        layer.__dict__["_textgen_lora_stacks"] = stacks
    if stacks.versions != versions:
        for index, (name, copied, current) in enumerate(zip(names, stacks.versions, versions)):
            if copied != current:
                stacks.copy(layer, index, name)
        stacks.versions = versions
    return stacks


def _row_mask(layer, adapter_names: tuple[str, ...], names: tuple[str, ...], rank: int,
              like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """[rows, 1, adapters x rank]: 1 on the columns of the row's adapter, 0 elsewhere (all 0 for a base row); and
    [rows, 1, 1]: the row's adapter's scaling (0 for a base row). The same for every layer of a forward pass whose
    layers share their adapters' ranks and scalings, so kept by all of that."""
    scales = tuple(layer.scaling[name] for name in names)
    key = (_generation, adapter_names, names, rank, scales, like.dtype, like.device)
    if key not in _row_masks:
        mask = torch.zeros(len(adapter_names), 1, len(names) * rank, dtype=like.dtype, device=like.device)
        scale = torch.zeros(len(adapter_names), 1, 1, dtype=like.dtype, device=like.device)
        for row, name in enumerate(adapter_names):
            if name in names:
                index = names.index(name)
                mask[row, 0, index * rank:(index + 1) * rank] = 1
                scale[row] = scales[index]
        if len(_row_masks) > 256:  # one entry per batch make-up: old ones are not worth keeping
            _row_masks.clear()
        _row_masks[key] = (mask, scale)
    return _row_masks[key]


def _mixed_batch_forward(self, x: torch.Tensor, *args, adapter_names: list[str], **kwargs) -> torch.Tensor:
    wanted = {name for name in adapter_names if name in self.lora_A}
    if self.training or not wanted or any(name in self.lora_variant for name in wanted) or x.dim() != 3 \
            or x.shape[1] != 1:
        return _peft_mixed_batch_forward(self, x, *args, adapter_names=adapter_names, **kwargs)
    # Every adapter in use, not only the batch's: the stacks then change only when an adapter is loaded or let go,
    # not whenever rows of other adapters join or leave (with many adapters, nearly every step).
    names = tuple(sorted(name for name in self.lora_A if name not in self.lora_variant
                         and (_in_use is None or name in _in_use or name in wanted)))
    kwargs.pop("alora_offsets", None)  # peft's variant argument, which the base layer must not get
    result = self.base_layer(x, *args, **kwargs)
    stacks = _stacks(self, names)
    mask, scale = _row_mask(self, tuple(adapter_names), names, stacks.rank, stacks.stacked)
    projected = torch.nn.functional.linear(x.to(stacks.stacked.dtype), stacks.stacked) * mask
    lora = torch.nn.functional.linear(projected, stacks.side_by_side) * scale
    return result + lora.to(result.dtype)

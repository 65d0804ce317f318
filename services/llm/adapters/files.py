"""An adapter version's files as the llm service reads them: peft's format on disk (adapter_config.json and
adapter_model.safetensors, what training writes), read once off the engine thread, and checked to be LoRA that the
served forward computes: per module, A [r, in], B [out, r] and the scale peft would apply (lora_alpha / r, or
/ √r with rsLoRA; rank_pattern and alpha_pattern per module). Serving needs no peft: only its file format."""
import dataclasses
import json
import math
import pathlib
import re
from typing import TYPE_CHECKING

from services.common import adapters

if TYPE_CHECKING:
    import torch

PEFT_PREFIX = "base_model.model."  # peft's prefix of a module's name in the model it wraps
# LoRA variants whose arithmetic is not x·Aᵀ·Bᵀ·scale: served by none of our forwards (trained here: none).
_VARIANTS = {"use_dora": "DoRA", "lora_bias": "a LoRA bias", "modules_to_save": "modules_to_save"}


class NoFreeSlot(Exception):
    """Every slot holds an adapter version that requests still use (services/llm/adapters/slots.py)."""


@dataclasses.dataclass(frozen=True)
class AdapterFiles:
    """An adapter version's config and weights, as its folder holds them, read once."""
    path: pathlib.Path
    config: dict
    weights: "dict[str, torch.Tensor]"

    def modules(self) -> dict[str, tuple["torch.Tensor", "torch.Tensor", float]]:
        """A, B and scale of each module it adapts, by the module's name in the base model; ValueError for what the
        served forward does not compute."""
        config = self.config
        if config.get("peft_type") != "LORA":
            raise ValueError(f"a {config.get('peft_type') or 'untyped'} adapter; only LoRA adapters are served")
        for key, what in _VARIANTS.items():
            if config.get(key):
                raise ValueError(f"an adapter with {what}; only plain LoRA (rsLoRA too) is served")
        pairs: dict[str, dict[str, torch.Tensor]] = {}
        for key, tensor in self.weights.items():
            module, _, kind = key.rpartition(".lora_")
            if kind not in ("A.weight", "B.weight") or tensor.dim() != 2:
                raise ValueError(f"{key}: not a LoRA A or B matrix (embedding and convolution adapters are not served)")
            pairs.setdefault(module.removeprefix(PEFT_PREFIX), {})[kind[0]] = tensor
        modules = {}
        for module, pair in pairs.items():
            if set(pair) != {"A", "B"}:
                raise ValueError(f"{module}: an A matrix without its B, or a B without its A")
            modules[module] = (pair["A"], pair["B"], self._scale(module, pair["A"].shape[0]))
        return modules

    def _scale(self, module: str, rank: int) -> float:
        config = self.config
        alpha = _pattern(config.get("alpha_pattern") or {}, module, config.get("lora_alpha", 8))
        return alpha / (math.sqrt(rank) if config.get("use_rslora") else rank)


def _pattern(patterns: dict, module: str, default):
    """peft's rank_pattern / alpha_pattern: the value of the first key that the module's name ends with."""
    for key, value in patterns.items():
        if re.fullmatch(rf"(.*\.)?{key}", module):
            return value
    return default


def read(path: pathlib.Path) -> AdapterFiles:
    from safetensors.torch import load_file

    path = pathlib.Path(path)
    return AdapterFiles(path, json.loads((path / "adapter_config.json").read_text()), load_file(path / adapters.WEIGHTS))

"""An adapter's weights copied into the LoRA layers of a slot, instead of loaded through peft's `load_adapter`.

peft's load reads the file on the thread that calls it, then walks and matches every module of the model and creates
(and casts) a new pair of LoRA layers in each: 0.3-0.4 s for an adapter on every linear layer of the embedded model,
on the engine thread, so every row waits (docs/benchmarks.md, "Many adapters"). Here the file is read once, off the
engine thread (`read`), and slots (peft adapters of no weights of their own) are made once up front; an adapter that
fits one (plain LoRA, on layers the slot has, at a rank no larger) has its weights copied into it, its rank's columns
padded with zeros, and its scaling set, which takes milliseconds. As vLLM and S-LoRA do with their preallocated
slots; the rows of a batch name the slot's peft name."""
import dataclasses
import json
import pathlib
from typing import TYPE_CHECKING

from services.common import adapters

if TYPE_CHECKING:
    import torch

_PLAIN = {"peft_type": "LORA", "use_dora": False, "use_rslora": False, "lora_bias": False}


class NoFreeSlot(Exception):
    """Every slot holds an adapter version that requests still use (services/llm/adapters/swapping.py)."""


@dataclasses.dataclass(frozen=True)
class AdapterFiles:
    """An adapter version's config and weights, as its folder holds them, read once."""
    path: pathlib.Path
    config: dict
    weights: "dict[str, torch.Tensor]"


def read(path: pathlib.Path) -> AdapterFiles:
    from safetensors.torch import load_file

    path = pathlib.Path(path)
    return AdapterFiles(path, json.loads((path / "adapter_config.json").read_text()), load_file(path / adapters.WEIGHTS))


def is_plain(config: dict) -> bool:
    """Plain LoRA: one rank and alpha for every layer, no variant (DoRA, rsLoRA, bias), nothing else trained."""
    return all(config.get(key, default) == default for key, default in _PLAIN.items()) \
        and not (config.get("rank_pattern") or config.get("alpha_pattern") or config.get("modules_to_save"))


def slot_config(config: dict):
    """The peft config of a slot that `config`'s adapter fits (plain LoRA on its layers, at its rank)."""
    from peft import LoraConfig

    if config.get("peft_type") != "LORA":
        raise ValueError(f"a {config.get('peft_type') or 'untyped'} adapter; only LoRA adapters are served")
    plain = {**config, **_PLAIN, "rank_pattern": {}, "alpha_pattern": {}, "modules_to_save": None,
             "inference_mode": True}
    return LoraConfig.from_peft_type(**plain)


def layers_of(model, slot: str) -> dict:
    """The LoRA layers that hold `slot`, by the module names the adapter's weight keys start with."""
    from peft.tuners.lora.layer import LoraLayer

    return {name: module for name, module in model.named_modules()
            if isinstance(module, LoraLayer) and slot in module.lora_A}


def fits(layers: dict, slot: str, adapter: AdapterFiles) -> bool:
    """Whether the adapter can be copied into the slot whose layers are `layers`."""
    if not is_plain(adapter.config):
        return False
    for key, tensor in adapter.weights.items():
        module_name, _, kind = key.rpartition(".lora_")
        layer = layers.get(module_name)
        if layer is None or kind not in ("A.weight", "B.weight"):
            return False
        held = (layer.lora_A if kind == "A.weight" else layer.lora_B)[slot].weight
        rank_dim = 0 if kind == "A.weight" else 1
        if tensor.dim() != 2 or tensor.shape[rank_dim] > held.shape[rank_dim] \
                or tensor.shape[1 - rank_dim] != held.shape[1 - rank_dim]:
            return False
    return True


def copy_into(layers: dict, slot: str, adapter: AdapterFiles) -> None:
    """The adapter's weights into the slot's layers, zero-padded to the slot's rank; layers it does not adapt get
    zeros (no effect)."""
    import torch

    scaling = adapter.config["lora_alpha"] / adapter.config["r"]
    with torch.no_grad():
        for name, layer in layers.items():
            a, b = layer.lora_A[slot].weight, layer.lora_B[slot].weight
            new_a, new_b = adapter.weights.get(f"{name}.lora_A.weight"), adapter.weights.get(f"{name}.lora_B.weight")
            a.zero_()
            b.zero_()
            if new_a is not None and new_b is not None:
                a[:new_a.shape[0]].copy_(new_a)
                b[:, :new_b.shape[1]].copy_(new_b)
            layer.scaling[slot] = scaling

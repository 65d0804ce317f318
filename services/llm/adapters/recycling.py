"""Loading an adapter into the LoRA layers of one that was unloaded, instead of through peft's `load_adapter`.

peft's load walks and matches every module of the model and creates (and casts) a new pair of LoRA layers in each:
0.3-0.4 s for an adapter on every linear layer of the embedded model, on the engine thread, so every row waits
(docs/benchmarks.md, "Many adapters"). An unloaded adapter's layers are kept as a free slot instead; a new adapter
that fits one (plain LoRA, on layers the slot has, at a rank no larger) has its weights copied into it, its rank's
columns padded with zeros, and its scaling set, which takes milliseconds. As vLLM and S-LoRA do with their
preallocated slots; the rows of a batch name the slot's peft name."""
import json
import pathlib

import torch

from services.common import adapters

_PLAIN = {"peft_type": "LORA", "use_dora": False, "use_rslora": False, "lora_bias": False}


def read(path: pathlib.Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """An adapter version's config and weights, as its folder holds them."""
    from safetensors.torch import load_file

    config = json.loads((pathlib.Path(path) / "adapter_config.json").read_text())
    return config, load_file(pathlib.Path(path) / adapters.WEIGHTS)


def _layers(model, slot: str) -> dict:
    """The LoRA layers that hold `slot`, by the module names the adapter's weight keys start with."""
    from peft.tuners.lora.layer import LoraLayer

    return {name: module for name, module in model.named_modules()
            if isinstance(module, LoraLayer) and slot in module.lora_A}


def fits(model, slot: str, config: dict, weights: dict[str, torch.Tensor]) -> dict | None:
    """The slot's layers when the adapter can be copied into them, else None."""
    if any(config.get(key, default) != default for key, default in _PLAIN.items()) or config.get("rank_pattern") \
            or config.get("alpha_pattern") or config.get("modules_to_save"):
        return None
    layers = _layers(model, slot)
    for key, tensor in weights.items():
        module_name, _, kind = key.rpartition(".lora_")
        layer = layers.get(module_name)
        if layer is None or kind not in ("A.weight", "B.weight"):
            return None
        held = (layer.lora_A if kind == "A.weight" else layer.lora_B)[slot].weight
        rank_dim = 0 if kind == "A.weight" else 1
        if tensor.dim() != 2 or tensor.shape[rank_dim] > held.shape[rank_dim] \
                or tensor.shape[1 - rank_dim] != held.shape[1 - rank_dim]:
            return None
    return layers


@torch.no_grad()
def copy_into(layers: dict, slot: str, config: dict, weights: dict[str, torch.Tensor]) -> None:
    """The adapter's weights into the slot's layers, zero-padded to the slot's rank; layers it does not adapt get
    zeros (no effect)."""
    scaling = config["lora_alpha"] / config["r"]
    for name, layer in layers.items():
        a, b = layer.lora_A[slot].weight, layer.lora_B[slot].weight
        new_a, new_b = weights.get(f"{name}.lora_A.weight"), weights.get(f"{name}.lora_B.weight")
        a.zero_()
        b.zero_()
        if new_a is not None and new_b is not None:
            a[:new_a.shape[0]].copy_(new_a)
            b[:, :new_b.shape[1]].copy_(new_b)
        layer.scaling[slot] = scaling

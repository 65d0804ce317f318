"""Our forward for GPT-2 (transformers' GPT2LMHeadModel, whose q/k/v product is already one): layer norms as torch's
fused `F.layer_norm`, learned positions added to the embeddings, keys and values into our KV cache in place and
attention over them there (services/llm/model/forward.py), four packed products a layer."""
import torch
from transformers.activations import ACT2FN

from services.llm.engine.kv_cache import KvCache
from services.llm.model.forward import Target, attend, attention_mask
from services.llm.model.projection import Projection


def unsupported(model) -> str | None:
    """Why our forward cannot serve `model` (None: it can)."""
    config = model.config
    if config.model_type != "gpt2":
        return f"model type {config.model_type!r} is not gpt2"
    if config.scale_attn_by_inverse_layer_idx or config.reorder_and_upcast_attn or getattr(config, "add_cross_attention",
                                                                                           False):
        return "a GPT-2 attention variant (scale_attn_by_inverse_layer_idx, reorder_and_upcast_attn, cross attention)"
    return None


def _conv(conv, pack: bool, int8: bool) -> Projection:
    return Projection(conv.weight.t(), conv.bias, pack, int8)  # Conv1D keeps its weight [in, out]


class _Layer:
    def __init__(self, block, pack: bool, int8: bool) -> None:
        self.ln_1, self.ln_2 = block.ln_1, block.ln_2
        self.c_attn, self.attn_proj = _conv(block.attn.c_attn, pack, int8), _conv(block.attn.c_proj, pack, int8)
        self.c_fc, self.mlp_proj = _conv(block.mlp.c_fc, pack, int8), _conv(block.mlp.c_proj, pack, int8)


class Gpt2Forward:
    def __init__(self, model, pack: bool, int8: bool) -> None:
        config, inner = model.config, model.transformer
        self.kind = "ours (gpt2)"
        self.heads, self.width = config.n_head, config.n_embd
        self.head_dim = self.width // self.heads
        self.scale = self.head_dim ** -0.5 if config.scale_attn_weights else 1.0
        self.act = ACT2FN[config.activation_function]
        self.wte, self.wpe = inner.wte.weight.detach(), inner.wpe.weight.detach()
        self.device = self.wte.device
        self.layers = [_Layer(block, pack, int8) for block in inner.h]
        self.ln_f = inner.ln_f
        self.head = Projection(model.lm_head.weight, None, pack, int8)
        self.targets = {"lm_head": Target(self.head, 0, ((0, self.head.out_features),))}
        for index, layer in enumerate(self.layers):
            for name, projection in (("attn.c_attn", layer.c_attn), ("attn.c_proj", layer.attn_proj),
                                     ("mlp.c_fc", layer.c_fc), ("mlp.c_proj", layer.mlp_proj)):
                self.targets[f"transformer.h.{index}.{name}"] = Target(projection, 0,
                                                                        ((0, projection.out_features),))

    def new_cache(self, layers=()) -> KvCache:
        return KvCache(layers, count=len(self.layers))

    @staticmethod
    def _norm(x: torch.Tensor, norm) -> torch.Tensor:
        return torch.nn.functional.layer_norm(x, (x.shape[-1],), norm.weight, norm.bias, norm.eps)

    def __call__(self, input_ids, attention, positions, cache, rows):
        cache = cache if cache is not None else self.new_cache()
        batch, tokens = input_ids.shape
        hidden = torch.nn.functional.embedding(input_ids, self.wte) + torch.nn.functional.embedding(positions, self.wpe)
        mask = attention_mask(attention, tokens)
        for layer, kv in zip(self.layers, cache.layers):
            qkv = layer.c_attn(self._norm(hidden, layer.ln_1), rows).view(batch, tokens, 3, self.heads, self.head_dim)
            query, keys, values = (qkv[:, :, part].transpose(1, 2) for part in range(3))
            keys, values = kv.append(keys, values)
            hidden = hidden + layer.attn_proj(attend(query, keys, values, mask, self.scale), rows)
            hidden = hidden + layer.mlp_proj(self.act(layer.c_fc(self._norm(hidden, layer.ln_2), rows)), rows)
        return cache, self.head(self._norm(hidden[:, -1], self.ln_f), rows)


def forward(model, pack: bool, int8: bool) -> Gpt2Forward:
    return Gpt2Forward(model, pack, int8)

"""Our forward for the Llama family (the embedded SmolLM2): transformers' LlamaForCausalLM, computed with fewer, larger
operations. Each layer is four products (q/k/v fused into one, o, gate/up fused into one, down) where transformers
makes seven, so a step of SmolLM2's 30 layers is 121 calls instead of 211; RMSNorm is torch's fused `F.rms_norm` in
float32, cast and scaled by its weight in the model's dtype as transformers does (the same bits: F.rms_norm with the
weight rounds once where transformers rounds twice, which changed bfloat16 answers);
rotary positions come from a table of cos and sin made once, by the model's own rotary module (so every rope type
it knows that does not change with the sequence's length is served alike); keys and values go into our KV cache in
place, and attention reads them there (services/llm/model/forward.py).
"""
import torch
from transformers.activations import ACT2FN

from services.llm.engine.kv_cache import KvCache
from services.llm.model.forward import Target, attend, attention_mask
from services.llm.model.projection import Projection

STATIC_ROPE = ("default", "linear", "llama3")  # rope types whose positions' angles do not depend on the length


def unsupported(model) -> str | None:
    """Why our forward cannot serve `model` (None: it can)."""
    config = model.config
    if config.model_type != "llama":
        return f"model type {config.model_type!r} is not llama"
    rope = getattr(model.model.rotary_emb, "rope_type", "default")
    if rope not in STATIC_ROPE:
        return f"rope type {rope!r} changes with the length"
    if config.hidden_act not in ACT2FN:
        return f"activation {config.hidden_act!r}"
    return None


class _Layer:
    def __init__(self, layer, pack: bool, int8: bool) -> None:
        attention, mlp = layer.self_attn, layer.mlp
        parts = [attention.q_proj, attention.k_proj, attention.v_proj]
        bias = None if parts[0].bias is None else torch.cat([p.bias for p in parts])
        self.qkv = Projection(torch.cat([p.weight for p in parts]), bias, pack, int8)
        self.o = Projection(attention.o_proj.weight, attention.o_proj.bias, pack, int8)
        gate_up_bias = None if mlp.gate_proj.bias is None else torch.cat([mlp.gate_proj.bias, mlp.up_proj.bias])
        self.gate_up = Projection(torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight]), gate_up_bias, pack, int8)
        self.down = Projection(mlp.down_proj.weight, mlp.down_proj.bias, pack, int8)
        self.input_norm = layer.input_layernorm.weight.detach()
        self.post_norm = layer.post_attention_layernorm.weight.detach()


def _columns(sizes: list[int]) -> tuple[tuple[int, int], ...]:
    ends = torch.tensor(sizes).cumsum(0).tolist()
    return tuple((end - size, end) for size, end in zip(sizes, ends))


class LlamaForward:
    def __init__(self, model, pack: bool, int8: bool) -> None:
        config, inner = model.config, model.model
        self.kind = "ours (llama)"
        self.heads, self.kv_heads = config.num_attention_heads, config.num_key_value_heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // self.heads
        self.scale = self.head_dim ** -0.5
        self.eps = config.rms_norm_eps
        self.act = ACT2FN[config.hidden_act]
        self.embed = inner.embed_tokens.weight.detach()
        self.device = self.embed.device
        self.layers = [_Layer(layer, pack, int8) for layer in inner.layers]
        self.norm = inner.norm.weight.detach()
        self.head = Projection(model.lm_head.weight, None, pack, int8)
        with torch.no_grad():
            positions = torch.arange(config.max_position_embeddings, device=self.embed.device)[None]
            cos, sin = inner.rotary_emb(self.embed[:1], positions)
        self.cos, self.sin = cos[0], sin[0]  # [positions, head_dim], in the model's dtype as transformers has them
        self.targets = self._targets(inner, model)

    def _targets(self, inner, model) -> dict[str, Target]:
        qkv = _columns([self.heads * self.head_dim, self.kv_heads * self.head_dim, self.kv_heads * self.head_dim])
        mlp = inner.layers[0].mlp.gate_proj.out_features
        targets = {"lm_head": Target(self.head, 0, ((0, model.lm_head.out_features),))}
        for index, layer in enumerate(self.layers):
            prefix = f"model.layers.{index}"
            for part, name in enumerate(("q_proj", "k_proj", "v_proj")):
                targets[f"{prefix}.self_attn.{name}"] = Target(layer.qkv, part, qkv)
            targets[f"{prefix}.self_attn.o_proj"] = Target(layer.o, 0, ((0, layer.o.out_features),))
            for part, name in enumerate(("gate_proj", "up_proj")):
                targets[f"{prefix}.mlp.{name}"] = Target(layer.gate_up, part, ((0, mlp), (mlp, 2 * mlp)))
            targets[f"{prefix}.mlp.down_proj"] = Target(layer.down, 0, ((0, layer.down.out_features),))
        return targets

    def new_cache(self, layers=()) -> KvCache:
        return KvCache(layers, count=len(self.layers))

    def _norm(self, hidden: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return weight * torch.nn.functional.rms_norm(hidden.float(), (hidden.shape[-1],), None, self.eps).to(
            hidden.dtype)

    def _rotated(self, states: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        half = states.shape[-1] // 2
        rotated_half = torch.cat((-states[..., half:], states[..., :half]), dim=-1)
        return states * cos + rotated_half * sin

    def __call__(self, input_ids, attention, positions, cache, rows):
        cache = cache if cache is not None else self.new_cache()
        batch, tokens = input_ids.shape
        hidden = torch.nn.functional.embedding(input_ids, self.embed)
        cos, sin = self.cos[positions][:, :, None], self.sin[positions][:, :, None]  # [rows, tokens, 1, head_dim]
        mask = attention_mask(attention, tokens)
        q_width, kv_width = self.heads * self.head_dim, self.kv_heads * self.head_dim
        for layer, kv in zip(self.layers, cache.layers):
            x = self._norm(hidden, layer.input_norm)
            qkv = layer.qkv(x, rows)
            # Queries and keys are rotated together: one set of operations for both.
            qk = self._rotated(qkv[..., :q_width + kv_width].view(batch, tokens, -1, self.head_dim), cos, sin)
            query = qk[:, :, :self.heads].transpose(1, 2)
            keys = qk[:, :, self.heads:].transpose(1, 2)
            values = qkv[..., q_width + kv_width:].view(batch, tokens, self.kv_heads, self.head_dim).transpose(1, 2)
            keys, values = kv.append(keys, values)
            hidden = hidden + layer.o(attend(query, keys, values, mask, self.scale), rows)
            x = self._norm(hidden, layer.post_norm)
            gate, up = layer.gate_up(x, rows).chunk(2, dim=-1)
            hidden = hidden + layer.down(self.act(gate) * up, rows)
        last = self._norm(hidden[:, -1], self.norm)
        return cache, self.head(last, rows)


def forward(model, pack: bool, int8: bool) -> LlamaForward:
    return LlamaForward(model, pack, int8)

"""Attention for the decode step of a model whose key/value heads are shared by groups of query heads (GQA, as in
SmolLM2 and Llama): transformers' "sdpa" with one change.

With no attention mask (a batch of one row, whose mask transformers drops) and one query token, transformers asks
torch's SDPA for `enable_gqa`, whose CPU kernel is several times slower for a single query than the same attention
with the query heads folded onto their key/value heads (transformers' own `pack_gqa`, which it uses whenever a mask
is present; docs/benchmarks.md has the figures). Here a single-token query is always folded; everything else is
transformers' sdpa as it is.
"""
import torch
from transformers import AttentionInterface, AttentionMaskInterface
from transformers.integrations.sdpa_attention import pack_gqa, sdpa_attention_forward
from transformers.masking_utils import sdpa_mask

NAME = "textgen_sdpa"


def attention(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
              attention_mask: torch.Tensor | None, scaling: float | None = None, **kwargs):
    groups = getattr(module, "num_key_value_groups", 1)
    if query.shape[2] != 1 or groups == 1:
        return sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling, **kwargs)
    output = torch.nn.functional.scaled_dot_product_attention(
        pack_gqa(query, groups), key, value, attn_mask=pack_gqa(attention_mask, groups), scale=scaling)
    return output.reshape(output.shape[0], -1, 1, value.shape[-1]).transpose(1, 2).contiguous(), None


AttentionInterface.register(NAME, attention)
AttentionMaskInterface.register(NAME, sdpa_mask)


def use(model) -> bool:
    """Switches a model that runs transformers' sdpa to this attention; False (and nothing changed) otherwise."""
    if getattr(model.config, "_attn_implementation", None) != "sdpa":
        return False
    model.set_attn_implementation(NAME)
    return True

"""The forward pass the engine runs: our own for the Llama and GPT-2 families (services/llm/model/llama.py, gpt2.py),
transformers' own for any other architecture (services/llm/model/fallback.py), behind one interface.

Every forward takes a piece of tokens for each row ([rows, tokens], left-padded), the batch's attention mask over
the cache's columns and the piece ([rows, columns]: 1 where a token is), each token's position (its row's own count),
the cache so far (None: empty) and the rows' adapters; it writes the piece's keys and values into the cache and
returns the cache and each row's logits after its last token.

Ours exist because transformers' forward, general as it is, costs a decode step of one row about as much in Python
and small operators as in products (docs/benchmarks.md): the families we serve get fused q/k/v and gate/up products,
fused norms, rotary positions from a table made once, and attention over the cache in place.
"""
import dataclasses
import logging
from typing import Protocol

import torch

from services.llm.model.lora import RowAdapters

log = logging.getLogger("textgen.llm")


@dataclasses.dataclass(frozen=True)
class Target:
    """Where the LoRA of one module of the transformers model goes: a projection holding a stack (`lora`) and which
    of its parts (output columns, `parts[part]`) the module's output is."""
    holder: object
    part: int
    parts: tuple[tuple[int, int], ...]


class Forward(Protocol):
    kind: str  # "ours (llama)", "transformers (…)": what the logs and bench say
    targets: dict[str, Target]  # by the module names of the transformers model, as adapters name them

    def new_cache(self, layers=()): ...

    def __call__(self, input_ids: torch.Tensor, attention: torch.Tensor, positions: torch.Tensor, cache,
                 rows: RowAdapters | None) -> tuple[object, torch.Tensor]: ...


def serving_forward(model, pack: bool = True, int8: bool = False, native: bool = True) -> Forward:
    """Our own forward for the model's family when there is one (and `native`), else transformers' (with a log line
    that says so); either way with weights packed where `pack` and oneDNN allow, int8 copies when `int8`."""
    from services.llm.model import fallback, gpt2, llama

    reasons = []
    for family in (llama, gpt2):
        if native:
            reason = family.unsupported(model)
            if reason is None:
                return family.forward(model, pack, int8)
            reasons.append(reason)
    log.info("transformers' forward serves this model", extra={
        "architecture": type(model).__name__, "why": "; ".join(reasons) or "our own forward was turned off"})
    return fallback.TransformersForward(model, pack, int8)


def attention_mask(attention: torch.Tensor, tokens: int) -> torch.Tensor:
    """[rows, 1, tokens, columns] booleans: the piece's token t (in the last `tokens` columns) sees the columns up to
    its own that hold a token. A padding token sees itself too: a query that sees nothing would give NaN, which its
    values would carry into every later layer's padding columns (masked out, but 0 × NaN is NaN)."""
    columns = attention.shape[1]
    own = torch.arange(columns - tokens, columns, device=attention.device)[:, None]
    seen = torch.arange(columns, device=attention.device)[None, :]
    causal = seen <= own
    return ((attention.bool()[:, None, :] & causal) | (seen == own))[:, None]


def attend(query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, mask: torch.Tensor,
           scale: float) -> torch.Tensor:
    """Attention of `query` [rows, heads, tokens, dim] over `keys`, `values` [rows, kv heads, columns, dim] (query
    head h reads kv head h // (heads / kv heads)), as [rows, tokens, heads × dim]. The query heads that share a kv
    head are folded into its tokens (transformers' own pack_gqa): torch's CPU kernel for `enable_gqa` is several
    times slower for a decode step's single query (docs/benchmarks.md)."""
    rows, heads, tokens, dim = query.shape
    groups = heads // keys.shape[1]
    if groups > 1:
        query = query.reshape(rows, keys.shape[1], groups * tokens, dim)
        if tokens > 1:
            mask = mask.repeat(1, 1, groups, 1)
    out = torch.nn.functional.scaled_dot_product_attention(query, keys, values, attn_mask=mask, scale=scale)
    return out.reshape(rows, heads, tokens, dim).transpose(1, 2).reshape(rows, tokens, heads * dim)

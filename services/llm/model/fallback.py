"""transformers' own forward, for an architecture without one of ours (services/llm/model/forward.py): the model as
from_pretrained loads it, with single-token attention folding query heads onto shared key/value heads
(services/llm/model/attention.py), its linear layers swapped for ours (services/llm/model/packed_linear.py: packed
weights, int8 copies when asked, and each row's LoRA adapter), and the running batch's KV cache behind transformers'
Cache interface (RoomyCache)."""
from services.llm.engine.kv_cache import RoomyCache
from services.llm.model import attention as single_token_attention
from services.llm.model import packed_linear
from services.llm.model.forward import Target


class TransformersForward:
    """`set_up=False` leaves the model as from_pretrained loads it (no adapters then): the benchmark's reference."""

    def __init__(self, model, pack: bool, int8: bool, set_up: bool = True) -> None:
        self.model = model
        self.device = next(model.parameters()).device
        self.kind = f"transformers ({type(model).__name__})"
        self.rows = packed_linear.StepRows()
        self.changes = []  # what was set up, for the log
        self.targets = {}
        if not set_up:
            return
        if single_token_attention.use(model):
            self.changes.append(f"attention {single_token_attention.NAME}")
        count = packed_linear.pack(model, int8, self.rows, packing=pack)
        self.changes.append(f"{count} linear layers {'packed' if pack else 'ours'}"
                            f"{' with int8 copies' if int8 else ''}")
        self.targets = {name: Target(module, 0, ((0, module.out_features),))
                        for name, module in model.named_modules() if isinstance(module, packed_linear.Layer)}

    def new_cache(self, layers=()) -> RoomyCache:
        return RoomyCache(layers)

    def __call__(self, input_ids, attention, positions, cache, rows):
        self.rows.current = rows
        try:
            output = self.model(input_ids=input_ids, attention_mask=attention, position_ids=positions,
                                cache=cache if cache is not None else RoomyCache(), use_cache=True, logits_to_keep=1)
        finally:
            self.rows.current = None
        return output.cache, output.logits[:, -1, :]

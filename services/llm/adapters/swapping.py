"""The engine thread's side of adapter management: LoRA adapter versions copied into the served model's slots and
let go of, between engine steps, as the catalog (services/llm/adapters/catalog.py) decides. The model served is the
base model until the first adapter comes; then it becomes a PeftModel holding a fixed number of slots, LoRA layers
made once (peft's module walk, about 0.3-0.4 s a slot for the embedded model) into which every adapter version is
copied (services/llm/adapters/recycling.py: milliseconds). Rows choose theirs per request by the slot's peft name
(services/llm/engine/running_batch.py).

The slots bound what adapters the model holds: LLM_MAX_LOADED_ADAPTERS plus FREE_SLOTS for versions still finishing
their requests after a newer one or another adapter took their place. With every slot in use a load raises NoFreeSlot
and the catalog waits for one to be let go. Whenever a slot gets other weights, the prefix cache forgets its blocks (a
name reused for other weights can never be answered from the old ones), and the mixed-batch stacks
(services/llm/adapters/lora_batch.py) refresh that slot."""
from services.llm import metrics
from services.llm.adapters import lora_batch, recycling

# Slots beyond LLM_MAX_LOADED_ADAPTERS: an adapter evicted (or replaced by a new version) keeps its slot until its
# last request ends, and the one taking its place needs a slot meanwhile. Each holds what an adapter does.
FREE_SLOTS = 2


class AdapterSwapper:
    """Made by the engine once the base model is loaded, with its running batch and prefix cache (None when off):
    the engine sits above this room and hands its parts in."""

    def __init__(self, base_model, batch, prefix_cache, max_loaded: int) -> None:
        self.base_model, self.batch, self.prefix_cache = base_model, batch, prefix_cache
        self.model = base_model  # or the PeftModel around it, once an adapter is loaded
        self.slots = max(1, max_loaded) + FREE_SLOTS
        self._free: list[str] = []  # slots no version uses, the latest freed last (and taken first)
        self._layers: dict[str, dict] = {}  # each slot's LoRA layers by module name
        self._plain: set[str] = set()  # slots of plain LoRA, which adapters are copied into
        lora_batch.install()

    def load(self, adapter: recycling.AdapterFiles) -> str:
        """Copies the adapter (read off the engine thread) into a free slot; returns the slot's peft name, which its
        rows use. A first load makes the slots, shaped like this adapter; one that fits none of the free slots (a
        larger rank, other layers, a LoRA variant) remakes one in its own shape."""
        if not self._layers:
            self._make_slots(recycling.slot_config(adapter.config))
        if not self._free:
            raise recycling.NoFreeSlot(f"all {self.slots} adapter slots are in use")
        slot = next((slot for slot in reversed(self._free)
                     if slot in self._plain and recycling.fits(self._layers[slot], slot, adapter)), None)
        if slot is None:
            slot = self._remake(self._free[0], adapter.config)
        self._forget(slot)
        if recycling.is_plain(adapter.config):
            recycling.copy_into(self._layers[slot], slot, adapter)
        else:
            from peft import set_peft_model_state_dict

            set_peft_model_state_dict(self.model, adapter.weights, adapter_name=slot)
        lora_batch.refresh(slot)
        self._free.remove(slot)  # only now: a slot whose copy failed stays free
        self._tell_in_use()
        return slot

    def unload(self, slot: str) -> None:
        """No request uses `slot`'s version any more: the slot is free for the next load."""
        self._forget(slot)
        self._free.append(slot)
        self._tell_in_use()

    def _tell_in_use(self) -> None:
        lora_batch.in_use(slot for slot in self._layers if slot not in self._free)

    def _make_slots(self, config) -> None:
        from peft import get_peft_model

        names = [f"slot-{index}" for index in range(self.slots)]
        self.model = get_peft_model(self.base_model, config, adapter_name=names[0])
        for name in names[1:]:
            self.model.add_adapter(name, config)
        self.model.eval()  # peft refuses adapter_names in training mode
        self._layers = {name: recycling.layers_of(self.model, name) for name in names}
        self._free, self._plain = names, set(names)
        self.batch.use_model(self.model, adapter_names=True)
        lora_batch.forget()

    def _remake(self, slot: str, config: dict) -> str:
        """`slot` made again in the shape of the adapter with `config`; one the model cannot take (peft says why)
        leaves the slot as it was."""
        pool_config, plain = self.model.peft_config[slot], recycling.is_plain(config)
        self.model.delete_adapter(slot)
        try:
            self.model.add_adapter(slot, recycling.slot_config(config) if plain else self._own_config(config))
            if plain:
                self._plain.add(slot)
            else:
                self._plain.discard(slot)
        except Exception:
            if slot in self.model.peft_config:
                self.model.delete_adapter(slot)
            self.model.add_adapter(slot, pool_config)
            raise
        finally:
            self.model.eval()
            self._layers[slot] = recycling.layers_of(self.model, slot)
            self.batch.adapters_changed()
            lora_batch.forget()
        return slot

    @staticmethod
    def _own_config(config: dict):
        from peft import PeftConfig

        return PeftConfig.from_peft_type(**{**config, "inference_mode": True})

    def _forget(self, slot: str) -> None:
        if self.prefix_cache is not None:
            self.prefix_cache.forget(slot)
            metrics.PREFIX_CACHE_TOKENS.set(self.prefix_cache.tokens)

"""The engine thread's side of adapter management: LoRA adapter versions loaded into the served model and deleted
from it, between engine steps, as the catalog (services/llm/adapters/catalog.py) decides. The model served is the
base model until the first adapter comes, then a PeftModel around it holding every loaded version under its peft
name; rows choose theirs per request (services/llm/engine/running_batch.py).

An unloaded adapter's layers are kept as a free slot that the next compatible adapter is copied into
(services/llm/adapters/recycling.py). Whenever a name is loaded, reused or unloaded, the prefix cache forgets that
name's blocks (a name reused for other weights can never be answered from the old ones), and the running batch and the
mixed-batch stacks (services/llm/adapters/lora_batch.py) forget what they knew of the adapters."""
import pathlib

from services.llm import metrics
from services.llm.adapters import lora_batch, recycling


# Unloaded adapters whose layers are kept for the next load to reuse (services/llm/adapters/recycling.py): with the
# least recently used leaving as each new one comes, one or two are enough. Each holds what an adapter does.
FREE_SLOTS = 2


class AdapterSwapper:
    """Made by the engine once the base model is loaded, with its running batch and prefix cache (None when off):
    the engine sits above this room and hands its parts in."""

    def __init__(self, base_model, batch, prefix_cache) -> None:
        self.base_model, self.batch, self.prefix_cache = base_model, batch, prefix_cache
        self.model = base_model  # or the PeftModel around it, once an adapter is loaded
        self._free: list[str] = []  # unloaded adapters' peft names, oldest first: their layers can be reused
        lora_batch.install()

    def load(self, path: pathlib.Path, peft_name: str) -> str:
        """Loads the adapter at `path`; returns the peft name its rows must use: `peft_name`, or the free slot its
        weights were copied into."""
        from peft import PeftModel

        if isinstance(self.model, PeftModel) and self._free:
            config, weights = recycling.read(path)
            for slot in self._free:
                layers = recycling.fits(self.model, slot, config, weights)
                if layers is not None:
                    self._free.remove(slot)
                    self._forget(slot)
                    recycling.copy_into(layers, slot, config, weights)
                    self._changed()
                    return slot
        self._forget(peft_name)
        if isinstance(self.model, PeftModel):
            try:
                self.model.load_adapter(str(path), adapter_name=peft_name)
            except Exception:
                if peft_name in self.model.peft_config:  # half-loaded: take it off again
                    self.model.delete_adapter(peft_name)
                raise
        else:
            self.model = PeftModel.from_pretrained(self.base_model, str(path), adapter_name=peft_name)
            self.batch.use_model(self.model, adapter_names=True)
        self.model.eval()  # peft refuses adapter_names in training mode
        self._changed()
        self._delete_extra_free()
        return peft_name

    def unload(self, peft_name: str) -> None:
        """No request uses `peft_name` any more: its layers become a free slot (the oldest beyond FREE_SLOTS go)."""
        self._forget(peft_name)
        self._free.append(peft_name)
        self._delete_extra_free()

    def _delete_extra_free(self) -> None:
        # A PeftModel needs one adapter left to stay valid: a free slot stays while it is the only one.
        while len(self._free) > FREE_SLOTS and len(self.model.peft_config) > 1:
            self.model.delete_adapter(self._free.pop(0))
            self._changed()

    def _changed(self) -> None:
        self.batch.adapters_changed()
        lora_batch.forget()

    def _forget(self, peft_name: str) -> None:
        if self.prefix_cache is not None:
            self.prefix_cache.forget(peft_name)
            metrics.PREFIX_CACHE_TOKENS.set(self.prefix_cache.tokens)

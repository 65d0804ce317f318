"""The engine thread's side of adapter management: LoRA adapter versions loaded into the served model and deleted
from it, between engine steps, as the catalog (services/llm/adapters/catalog.py) decides. The model served is the
base model until the first adapter comes, then a PeftModel around it holding every loaded version under its peft
name; rows choose theirs per request (services/llm/engine/running_batch.py).

Whenever a name is loaded or deleted, the prefix cache forgets that name's blocks (a name reused for other weights
can never be answered from the old ones), and the running batch and the mixed-batch stacks
(services/llm/adapters/lora_batch.py) forget what they knew of the adapters."""
import pathlib

from services.llm import metrics
from services.llm.adapters import lora_batch


class AdapterSwapper:
    """Made by the engine once the base model is loaded, with its running batch and prefix cache (None when off):
    the engine sits above this room and hands its parts in."""

    def __init__(self, base_model, batch, prefix_cache) -> None:
        self.base_model, self.batch, self.prefix_cache = base_model, batch, prefix_cache
        self.model = base_model  # or the PeftModel around it, once an adapter is loaded
        self._unload_later: set[str] = set()
        lora_batch.install()

    def load(self, path: pathlib.Path, peft_name: str) -> None:
        from peft import PeftModel

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
        self._unload_pending()

    def unload(self, peft_name: str) -> None:
        self._unload_later.add(peft_name)
        self._unload_pending()

    def _unload_pending(self) -> None:
        # A PeftModel needs one adapter left to stay valid: the last one goes once another has been loaded.
        for peft_name in sorted(self._unload_later):
            if len(self.model.peft_config) > 1:
                self.model.delete_adapter(peft_name)
                self._forget(peft_name)
                self._unload_later.discard(peft_name)
                self._changed()

    def _changed(self) -> None:
        self.batch.adapters_changed()
        lora_batch.forget()

    def _forget(self, peft_name: str) -> None:
        if self.prefix_cache is not None:
            self.prefix_cache.forget(peft_name)
            metrics.PREFIX_CACHE_TOKENS.set(self.prefix_cache.tokens)

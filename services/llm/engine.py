"""The one thread that owns the model: loading, adapter changes and generation all run on it, in order, so a
batch never sees the model change under it and the event loop stays free for health and status."""
import asyncio
import concurrent.futures
import logging

from services.llm.adapters_registry import AdapterRegistry
from services.llm.decoding import Row, generate_batch
from services.common.base_model import BaseModelUnavailable
from services.llm.loading import BaseModel, load_base_model

log = logging.getLogger("textgen.llm")


class Engine:
    def __init__(self, base_model_name: str, registry: AdapterRegistry, torch_threads: int = 0) -> None:
        self.base_model_name = base_model_name
        self.registry = registry
        self.torch_threads = torch_threads
        self.base: BaseModel | None = None
        self.model = None  # the base model, or a PeftModel around it once an adapter is loaded
        self.unavailable_reason = "the base model is still loading"
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="llm-engine")

    async def call(self, function, *args):
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    # --- everything below runs on the engine thread ----------------------------------------------------------
    def load(self) -> bool:
        import torch
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        if self.torch_threads > 0:
            torch.set_num_threads(self.torch_threads)
        try:
            self.base = load_base_model(self.base_model_name)
        except BaseModelUnavailable as error:
            self.unavailable_reason = str(error)
            log.error("base model unavailable", extra={"base_model": self.base_model_name, "reason": str(error)})
            return False
        self.model = self.base.model
        self.unavailable_reason = ""
        self.registry.reload(self)
        return True

    def reload_adapters(self) -> None:
        if self.base is not None:
            self.registry.reload(self)

    def add_adapter(self, path, peft_name: str) -> None:
        from peft import PeftModel

        if isinstance(self.model, PeftModel):
            try:
                self.model.load_adapter(str(path), adapter_name=peft_name)
            except Exception:
                if peft_name in self.model.peft_config:  # half-loaded: take it off again
                    self.model.delete_adapter(peft_name)
                raise
        else:
            self.model = PeftModel.from_pretrained(self.base.model, str(path), adapter_name=peft_name)
        self.model.eval()  # peft refuses adapter_names in training mode

    def delete_adapter(self, peft_name: str) -> None:
        self.model.delete_adapter(peft_name)

    def decode(self, ids: list[int]) -> str:
        return self.base.tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)

    def generate(self, rows: list[Row]) -> None:
        from peft import PeftModel

        try:
            generate_batch(self.model, rows, self.base.eos_id, self.decode, isinstance(self.model, PeftModel))
        finally:
            self.registry.collect(self)

"""The one thread that owns the model: loading, adapter changes and generation all run on it, in order, so a
batch never sees the model change under it and the event loop stays free for health and status. Nothing else
touches the model; the adapter catalog (services/llm/catalog.py) tells the engine what to load and unload."""
import asyncio
import concurrent.futures
import logging
import pathlib

from services.common.base_model import BaseModelUnavailable
from services.llm.decoding import Row, generate_batch
from services.llm.loading import BaseModel, load_base_model

log = logging.getLogger("textgen.llm")


class Engine:
    def __init__(self, base_model_name: str, torch_threads: int = 0) -> None:
        self.base_model_name = base_model_name
        self.torch_threads = torch_threads
        self.base: BaseModel | None = None
        self.unavailable_reason = "the base model is still loading"
        self._model = None  # the base model, or a PeftModel around it once an adapter is loaded
        self._unload_later: set[str] = set()
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="llm-engine")

    async def _on_engine_thread(self, function, *args):
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    async def load(self) -> bool:
        """Loads LLM_BASE_MODEL; False (with `unavailable_reason` saying how to fix it) when it cannot be loaded."""
        return await self._on_engine_thread(self._load)

    async def load_adapter(self, path: pathlib.Path, peft_name: str) -> None:
        await self._on_engine_thread(self._load_adapter, path, peft_name)

    async def unload_adapter(self, peft_name: str) -> None:
        await self._on_engine_thread(self._unload_adapter, peft_name)

    async def generate(self, rows: list[Row]) -> None:
        await self._on_engine_thread(self._generate, rows)

    # --- everything below runs on the engine thread ----------------------------------------------------------
    def _load(self) -> bool:
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
        self._model = self.base.model
        self.unavailable_reason = ""
        return True

    def _load_adapter(self, path: pathlib.Path, peft_name: str) -> None:
        from peft import PeftModel

        if isinstance(self._model, PeftModel):
            try:
                self._model.load_adapter(str(path), adapter_name=peft_name)
            except Exception:
                if peft_name in self._model.peft_config:  # half-loaded: take it off again
                    self._model.delete_adapter(peft_name)
                raise
        else:
            self._model = PeftModel.from_pretrained(self.base.model, str(path), adapter_name=peft_name)
        self._model.eval()  # peft refuses adapter_names in training mode
        self._unload_pending()

    def _unload_adapter(self, peft_name: str) -> None:
        self._unload_later.add(peft_name)
        self._unload_pending()

    def _unload_pending(self) -> None:
        # A PeftModel needs one adapter left to stay valid: the last one goes once another has been loaded.
        for peft_name in sorted(self._unload_later):
            if len(self._model.peft_config) > 1:
                self._model.delete_adapter(peft_name)
                self._unload_later.discard(peft_name)

    def _decode(self, ids: list[int]) -> str:
        return self.base.tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)

    def _generate(self, rows: list[Row]) -> None:
        from peft import PeftModel

        generate_batch(self._model, rows, self.base.eos_id, self._decode, isinstance(self._model, PeftModel))

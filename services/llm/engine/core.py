"""The one thread that owns the model. It loads the base model, changes adapters when told to (between steps, so a
step never sees the model change under it; services/llm/adapters/slots.py) and runs the engine loop: at every
step the scheduler admits waiting requests into the running batch, which prefills one group of prompts (whole, or a
chunk of LLM_PREFILL_CHUNK_TOKENS), makes a token for every decoding row, and lets finished rows go
(services/llm/engine/running_batch.py). The event loop stays free for health and status; nothing else touches the
model."""
import asyncio
import concurrent.futures
import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING

from services.common.base_model import BaseModelSpec, BaseModelUnavailable, choose
from services.common.devices import Placement
from services.llm import metrics
from services.llm.config import LlmConfig
from services.llm.engine.prefix_cache import PrefixCache
from services.llm.engine.scheduler import Scheduler
from services.llm.model.loading import BaseModel, ServingSetup, load_base_model
from services.llm.request import Request

if TYPE_CHECKING:
    from services.llm.adapters.files import AdapterFiles
    from services.llm.adapters.slots import AdapterSlots
    from services.llm.engine.running_batch import RunningBatch

log = logging.getLogger("textgen.llm")

MAX_WINDOWS = 10  # a steady trickle of arrivals cannot hold a new batch open for ever


@dataclasses.dataclass
class EngineStats:
    admissions: int = 0  # groups of requests admitted together
    admitted: int = 0
    largest_batch: int = 0
    in_flight: int = 0
    prefix_lookups: int = 0  # admitted requests looked up in the prefix cache
    prefix_hits: int = 0  # and those that started from a cached prefix


class Engine:
    """Raises ValueError (naming the variable) for a setting it cannot serve with."""

    def __init__(self, config: LlmConfig, placement: Placement) -> None:
        self.config, self.placement = config, placement
        self.setup = ServingSetup(config.pack_weights, config.quantization)
        self.scheduler = Scheduler(config.batch_size_for(placement.on_gpu), config.batch_tokens_for(placement.on_gpu),
                                   config.max_queued, running_rows=lambda: len(self._batch or ()))
        self.prefix_cache = PrefixCache(config.prefix_cache_tokens) if config.prefix_cache_tokens > 0 else None
        metrics.PREFIX_CACHE_MAX_TOKENS.set(max(0, config.prefix_cache_tokens))
        self.window = max(0.0, config.batch_window_ms) / 1000
        self.spec: BaseModelSpec | None = None  # once decided
        self.base: BaseModel | None = None
        self.unavailable_reason = "the base model is still loading"
        self.stats = EngineStats()
        self._batch: RunningBatch | None = None
        self._adapters: AdapterSlots | None = None
        self._commands: queue.SimpleQueue = queue.SimpleQueue()
        self._wake = threading.Event()
        threading.Thread(target=self._run, name="llm-engine", daemon=True).start()

    @property
    def base_model_name(self) -> str:
        return self.spec.name if self.spec else self.config.base_model

    # --- the event loop's side ------------------------------------------------------------------------------
    async def _on_engine_thread(self, function, *args):
        done: concurrent.futures.Future = concurrent.futures.Future()
        self._commands.put((function, args, done))
        self._wake.set()
        return await asyncio.wrap_future(done)

    async def load(self) -> bool:
        """Loads LLM_BASE_MODEL; False (with `unavailable_reason` saying how to fix it) when it cannot be loaded."""
        return await self._on_engine_thread(self._load)

    async def load_adapter(self, adapter: "AdapterFiles") -> str:
        """Copies the adapter (its files already read) into a free slot; returns the slot's name, which its rows use
        (services/llm/adapters/slots.py)."""
        return await self._on_engine_thread(lambda: self._adapters.load(adapter))

    async def unload_adapter(self, slot: str) -> None:
        await self._on_engine_thread(lambda: self._adapters.unload(slot))

    def submit(self, request: Request) -> Awaitable[Request]:
        """Queues `request` now, or raises QueueFull past LLM_MAX_QUEUED; the returned awaitable ends with the request.
        If its awaiter is cancelled the request is marked cancelled, so the engine drops it at its next step (or never
        admits it)."""
        loop = asyncio.get_running_loop()
        finished = loop.create_future()

        def done() -> None:  # on the event loop, once the engine is finished with the request
            self.stats.in_flight -= 1
            if not finished.done():
                finished.set_result(request)

        request.on_done = lambda: loop.call_soon_threadsafe(done)
        self.scheduler.submit(request)
        self.stats.in_flight += 1
        metrics.QUEUE_LENGTH.set(len(self.scheduler))
        self._wake.set()
        return self._finished(request, finished)

    async def _finished(self, request: Request, finished: asyncio.Future) -> Request:
        try:
            await asyncio.shield(finished)
        except asyncio.CancelledError:
            request.cancelled = True
            self._wake.set()
            raise
        if request.error is not None:
            raise request.error
        return request

    # --- everything below runs on the engine thread ----------------------------------------------------------
    def _run(self) -> None:
        while True:
            self._wake.clear()
            self._run_commands()
            if self._batch is None or (not self._batch and not len(self.scheduler)):
                self._wake.wait()
                continue
            if not self._batch:
                self._hold_window_open()
            self._admit()
            if self._batch:
                self._step()

    def _run_commands(self) -> None:
        while True:
            try:
                function, args, done = self._commands.get_nowait()
            except queue.Empty:
                return
            try:
                done.set_result(function(*args))
            except Exception as error:
                done.set_exception(error)

    def _hold_window_open(self) -> None:
        """A batch that starts from empty stays open while requests keep arriving less than a window apart, so that
        requests sent together are prefilled together (continuous batching admits later ones at the next token)."""
        closes = time.monotonic() + self.window * MAX_WINDOWS
        while len(self.scheduler) < self.scheduler.max_batch_size and time.monotonic() < closes:
            waiting = len(self.scheduler)
            self._wake.clear()
            self._wake.wait(min(self.window, closes - time.monotonic()))
            if len(self.scheduler) == waiting:
                return

    def _admit(self) -> None:
        taken = self.scheduler.take(len(self._batch), self._batch.tokens_held)
        metrics.QUEUE_LENGTH.set(len(self.scheduler))
        for request in taken.dropped:
            self._finish(request)
        if not taken.admitted:
            return
        now = time.monotonic()
        for request in taken.admitted:
            metrics.QUEUE_SECONDS.observe(now - request.submitted_at)
        self.stats.admissions += 1
        self.stats.admitted += len(taken.admitted)
        self._batch.admit(taken.admitted)
        self._count_prefix_hits(taken.admitted)

    def _count_prefix_hits(self, admitted: list[Request]) -> None:
        metrics.PROMPT_TOKENS.inc(sum(len(request.prompt_ids) for request in admitted))
        if self.prefix_cache is None:
            return
        hits = [request for request in admitted if request.cached_tokens]
        self.stats.prefix_lookups += len(admitted)
        self.stats.prefix_hits += len(hits)
        metrics.PREFIX_LOOKUPS.inc(len(admitted))
        metrics.PREFIX_HITS.inc(len(hits))
        metrics.PREFIX_SAVED_TOKENS.inc(sum(request.cached_tokens for request in hits))

    def _step(self) -> None:
        outcome = self._batch.step()
        for request in outcome.joined:
            if request.first_token_at is not None:  # none for a row whose first token could not be chosen
                metrics.FIRST_TOKEN_SECONDS.observe(request.first_token_at - request.submitted_at)
        if outcome.decoded_rows:
            metrics.OCCUPANCY.observe(outcome.decoded_rows)
            self.stats.largest_batch = max(self.stats.largest_batch, outcome.decoded_rows)
        if self.prefix_cache is not None:  # the prefill stores its prompts' blocks
            metrics.PREFIX_CACHE_TOKENS.set(self.prefix_cache.tokens)
        for request in outcome.finished:
            metrics.GENERATED_TOKENS.labels(request.stop_reason).inc(len(request.generated))
            self._finish(request)

    @staticmethod
    def _finish(request: Request) -> None:
        if request.on_done is not None:
            request.on_done()

    def _load(self) -> bool:
        # torch and transformers load here, on the engine thread: the service's port is open meanwhile.
        import torch
        from transformers.utils import logging as hf_logging

        from services.llm.adapters.slots import AdapterSlots
        from services.llm.engine.running_batch import RunningBatch

        hf_logging.disable_progress_bar()
        if self.config.torch_threads > 0:
            torch.set_num_threads(self.config.torch_threads)
        try:
            self.spec = choose(self.config.base_model, self.config.models_dir)
            if self.spec.note:
                log.warning(self.spec.note)
            self.base = load_base_model(self.spec, self.placement, self.setup)
        except BaseModelUnavailable as error:
            self.unavailable_reason = str(error)
            log.error("base model unavailable", extra={"base_model": self.base_model_name, "reason": str(error)})
            return False
        self._batch = RunningBatch(self.base.forward, self.base.eos_id, self._detokenize,
                                   prefix_cache=self.prefix_cache, chunk_tokens=self.config.prefill_chunk_tokens)
        self._batch.adapters = self._adapters = AdapterSlots(self.base.forward, self.prefix_cache,
                                                             self.config.max_loaded_adapters)
        self.unavailable_reason = ""
        return True

    def _detokenize(self, ids: list[int]) -> str:
        return self.base.tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)

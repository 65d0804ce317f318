"""The one thread that owns the model. It loads the base model and changes adapters when told to (between decode
steps, so a step never sees the model change under it), and runs the decode loop: at every step the scheduler
admits waiting requests into the running batch, one group of prompts is prefilled (whole, or a chunk of
LLM_PREFILL_CHUNK_TOKENS; rows whose prompt is in join the decoding rows and their first token streams at once), every
decoding row makes a token, and finished rows leave. The event loop stays free for health and status. Nothing else
touches the model; the adapter catalog (services/llm/catalog.py) tells the engine what to load and unload."""
import asyncio
import concurrent.futures
import dataclasses
import logging
import pathlib
import queue
import threading
import time
from collections.abc import Awaitable

import prometheus_client

from services.common.base_model import BaseModelSpec, BaseModelUnavailable, choose
from services.common.devices import Placement
from services.llm import lora_batch
from services.llm.decoding import RunningBatch
from services.llm.loading import BaseModel, ServingSetup, load_base_model
from services.llm.prefix_cache import PrefixCache
from services.llm.request import Request
from services.llm.scheduler import Scheduler

log = logging.getLogger("textgen.llm")

MAX_WINDOWS = 10  # a steady trickle of arrivals cannot hold a new batch open for ever
QUEUE_LENGTH = prometheus_client.Gauge("textgen_llm_queue_length", "Requests waiting for a place in the batch.")
QUEUE_SECONDS = prometheus_client.Histogram("textgen_llm_queue_seconds", "Time from arrival to admission.",
                                            buckets=(.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30))
FIRST_TOKEN_SECONDS = prometheus_client.Histogram(
    "textgen_llm_time_to_first_token_seconds", "Time from arrival to the first generated token.",
    buckets=(.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30))
OCCUPANCY = prometheus_client.Histogram("textgen_llm_batch_occupancy", "Rows decoded together, per decode step.",
                                        buckets=(1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64))
GENERATED_TOKENS = prometheus_client.Counter("textgen_llm_generated_tokens_total",
                                             "Tokens generated, by how the answer ended.", ["stop"])
# The hit rate is hits / lookups; the share of prompt tokens not prefilled is saved / prompt tokens.
PREFIX_LOOKUPS = prometheus_client.Counter("textgen_llm_prefix_cache_lookups_total",
                                           "Admitted requests whose prompt was looked up in the prefix cache.")
PREFIX_HITS = prometheus_client.Counter("textgen_llm_prefix_cache_hits_total",
                                        "Admitted requests that started from a cached prefix.")
PREFIX_SAVED_TOKENS = prometheus_client.Counter("textgen_llm_prefix_cache_saved_tokens_total",
                                                "Prompt tokens taken from the prefix cache instead of prefilled.")
PROMPT_TOKENS = prometheus_client.Counter("textgen_llm_prompt_tokens_total", "Prompt tokens of admitted requests.")
PREFIX_CACHE_TOKENS = prometheus_client.Gauge("textgen_llm_prefix_cache_tokens",
                                              "Tokens whose keys and values the prefix cache holds.")
PREFIX_CACHE_MAX_TOKENS = prometheus_client.Gauge("textgen_llm_prefix_cache_max_tokens",
                                                  "LLM_PREFIX_CACHE_TOKENS: the prefix cache's bound (0: off).")


@dataclasses.dataclass
class EngineStats:
    admissions: int = 0  # groups of requests admitted together
    admitted: int = 0
    largest_batch: int = 0
    in_flight: int = 0
    prefix_lookups: int = 0  # admitted requests looked up in the prefix cache
    prefix_hits: int = 0  # and those that started from a cached prefix


class Engine:
    def __init__(self, base_model_setting: str, models_dir: pathlib.Path, placement: Placement, scheduler: Scheduler,
                 batch_window_ms: float = 0.0, torch_threads: int = 0, prefix_cache_tokens: int = 0,
                 prefill_chunk_tokens: int = 0, setup: ServingSetup = ServingSetup()) -> None:
        self.base_model_setting = base_model_setting  # LLM_BASE_MODEL, "" when unset
        self.models_dir = models_dir
        self.spec: BaseModelSpec | None = None  # once decided
        self.placement = placement
        self.scheduler = scheduler
        self.window = max(0.0, batch_window_ms) / 1000
        self.torch_threads = torch_threads
        self.prefix_cache = PrefixCache(prefix_cache_tokens) if prefix_cache_tokens > 0 else None
        self.prefill_chunk_tokens = max(0, prefill_chunk_tokens)
        self.setup = setup
        PREFIX_CACHE_MAX_TOKENS.set(max(0, prefix_cache_tokens))
        self.base: BaseModel | None = None
        self.unavailable_reason = "the base model is still loading"
        self.stats = EngineStats()
        self._model = None  # the base model, or a PeftModel around it once an adapter is loaded
        self._batch: RunningBatch | None = None
        self._unload_later: set[str] = set()
        self._commands: queue.SimpleQueue = queue.SimpleQueue()
        self._wake = threading.Event()
        threading.Thread(target=self._run, name="llm-engine", daemon=True).start()

    @property
    def base_model_name(self) -> str:
        return self.spec.name if self.spec else self.base_model_setting

    # --- the event loop's side ------------------------------------------------------------------------------
    async def _on_engine_thread(self, function, *args):
        done: concurrent.futures.Future = concurrent.futures.Future()
        self._commands.put((function, args, done))
        self._wake.set()
        return await asyncio.wrap_future(done)

    async def load(self) -> bool:
        """Loads LLM_BASE_MODEL; False (with `unavailable_reason` saying how to fix it) when it cannot be loaded."""
        return await self._on_engine_thread(self._load)

    async def load_adapter(self, path: pathlib.Path, peft_name: str) -> None:
        await self._on_engine_thread(self._load_adapter, path, peft_name)

    async def unload_adapter(self, peft_name: str) -> None:
        await self._on_engine_thread(self._unload_adapter, peft_name)

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
        QUEUE_LENGTH.set(len(self.scheduler))
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
        QUEUE_LENGTH.set(len(self.scheduler))
        for request in taken.dropped:
            self._finish(request)
        if not taken.admitted:
            return
        now = time.monotonic()
        for request in taken.admitted:
            QUEUE_SECONDS.observe(now - request.submitted_at)
        self.stats.admissions += 1
        self.stats.admitted += len(taken.admitted)
        self._batch.admit(taken.admitted)
        self._count_prefix_hits(taken.admitted)
        self._release()

    def _count_prefix_hits(self, admitted: list[Request]) -> None:
        PROMPT_TOKENS.inc(sum(len(request.prompt_ids) for request in admitted))
        if self.prefix_cache is None:
            return
        hits = [request for request in admitted if request.cached_tokens]
        self.stats.prefix_lookups += len(admitted)
        self.stats.prefix_hits += len(hits)
        PREFIX_LOOKUPS.inc(len(admitted))
        PREFIX_HITS.inc(len(hits))
        PREFIX_SAVED_TOKENS.inc(sum(request.cached_tokens for request in hits))

    def _step(self) -> None:
        self._batch.check_interrupts()
        self._release()
        if not self._batch:
            return
        self._prefill()
        self._release()
        if not self._batch.rows:
            return
        OCCUPANCY.observe(len(self._batch.rows))
        self.stats.largest_batch = max(self.stats.largest_batch, len(self._batch.rows))
        try:
            self._batch.step()
        except Exception as error:  # reported to each caller in the batch; the engine starts afresh
            log.exception("decode step failed", extra={"rows": len(self._batch.rows)})
            for row in self._batch.rows:
                row.stop_reason, row.error = "error", error
        self._release()

    def _prefill(self) -> None:
        try:
            joined = self._batch.prefill()
        except Exception:  # the batch has reported it to the rows it was prefilling; the rows decoding carry on
            log.exception("prefill failed")
            return
        for request in joined:
            FIRST_TOKEN_SECONDS.observe(request.first_token_at - request.submitted_at)
        if self.prefix_cache is not None:  # the prefill stores its prompts' blocks
            PREFIX_CACHE_TOKENS.set(self.prefix_cache.tokens)

    def _release(self) -> None:
        for row in self._batch.release_finished():
            GENERATED_TOKENS.labels(row.stop_reason).inc(len(row.generated))
            self._finish(row)
        self.scheduler.running = len(self._batch)

    @staticmethod
    def _finish(request: Request) -> None:
        if request.on_done is not None:
            request.on_done()

    def _load(self) -> bool:
        import torch
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        if self.torch_threads > 0:
            torch.set_num_threads(self.torch_threads)
        try:
            self.spec = choose(self.base_model_setting, self.models_dir)
            if self.spec.note:
                log.warning(self.spec.note)
            self.base = load_base_model(self.spec, self.placement, self.setup)
        except BaseModelUnavailable as error:
            self.unavailable_reason = str(error)
            log.error("base model unavailable", extra={"base_model": self.base_model_name, "reason": str(error)})
            return False
        self._model = self.base.model
        lora_batch.install()
        self._batch = RunningBatch(self._model, self.base.eos_id, self._decode, use_adapter_names=False,
                                   prefix_cache=self.prefix_cache, chunk_tokens=self.prefill_chunk_tokens)
        self.unavailable_reason = ""
        return True

    def _use_model(self, model) -> None:
        from peft import PeftModel

        self._model = model
        self._batch.model = model
        self._batch.use_adapter_names = isinstance(model, PeftModel)
        self._batch.adapters_changed()

    def _load_adapter(self, path: pathlib.Path, peft_name: str) -> None:
        from peft import PeftModel

        self._forget_prefixes(peft_name)
        if isinstance(self._model, PeftModel):
            try:
                self._model.load_adapter(str(path), adapter_name=peft_name)
            except Exception:
                if peft_name in self._model.peft_config:  # half-loaded: take it off again
                    self._model.delete_adapter(peft_name)
                raise
        else:
            self._use_model(PeftModel.from_pretrained(self.base.model, str(path), adapter_name=peft_name))
        self._model.eval()  # peft refuses adapter_names in training mode
        self._batch.adapters_changed()
        self._unload_pending()

    def _unload_adapter(self, peft_name: str) -> None:
        self._unload_later.add(peft_name)
        self._unload_pending()

    def _unload_pending(self) -> None:
        # A PeftModel needs one adapter left to stay valid: the last one goes once another has been loaded.
        for peft_name in sorted(self._unload_later):
            if len(self._model.peft_config) > 1:
                self._model.delete_adapter(peft_name)
                self._forget_prefixes(peft_name)
                self._unload_later.discard(peft_name)
                self._batch.adapters_changed()

    def _forget_prefixes(self, peft_name: str) -> None:
        # The catalog names every version afresh; forgetting on load too means a name reused for other weights
        # can never be answered from the old ones.
        if self.prefix_cache is not None:
            self.prefix_cache.forget(peft_name)
            PREFIX_CACHE_TOKENS.set(self.prefix_cache.tokens)

    def _decode(self, ids: list[int]) -> str:
        return self.base.tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)

"""LlmService: Generate, GenerateStream, GetStatus and ReloadAdapters.

In Generate and GenerateStream, `message` is the call's LlmGenerateRequest and `request` the `Request` the planner
makes of it (services/llm/request.py): the one object the scheduler queues and the engine decodes."""
import logging

import grpc
from textgen.v1 import llm_pb2, llm_pb2_grpc

from services.common.adapters import ADAPTER_NAMES, BASE
from services.common.errors import Violations
from services.llm import planning
from services.llm.catalog import AdapterCatalog, Lease
from services.llm.engine import Engine
from services.llm.generation import Generation, GenerationFailed, generate
from services.llm.request import Request

log = logging.getLogger("textgen.llm")

# An adapter asked for falls back to those trained before it, then to the base model: rl -> sft -> base.
FALLBACKS = {name: (*reversed(ADAPTER_NAMES[:i + 1]), BASE) for i, name in enumerate(ADAPTER_NAMES)} | {BASE: (BASE,)}


class LlmServicer(llm_pb2_grpc.LlmServiceServicer):
    def __init__(self, engine: Engine, catalog: AdapterCatalog) -> None:
        self.engine = engine
        self.catalog = catalog
        self.planner: planning.Planner | None = None  # once the base model is loaded

    @property
    def ready(self) -> bool:
        return self.planner is not None

    def _choose_adapter(self, message) -> tuple[Lease, str | None]:
        wanted = message.adapter or ("rl" if not message.HasField("use_rl_model") or message.use_rl_model
                                     else "sft")
        for name in FALLBACKS[wanted]:
            lease = self.catalog.acquire(name)
            if lease is not None:
                break
        if lease.name == wanted:
            return lease, None
        version = f" (version {lease.version})" if lease.version else ""
        return lease, (f"adapter {wanted!r} is not available ({self.catalog.why_missing(wanted)}); "
                       f"used {lease.name!r}{version} instead")

    async def _prepare(self, message, context) -> tuple[Request, Lease]:
        """The planner's `Request` for this message, with what only the servicer knows set on it: the adapter
        version it holds a lease on (and the warning when that is a fallback)."""
        violations = Violations()
        planning.validate(message, violations)
        await violations.abort_if_any(context)
        if not self.ready:
            await context.abort(grpc.StatusCode.UNAVAILABLE, self.engine.unavailable_reason)
        request = await self.planner.plan(message)
        if isinstance(request, Violations):
            await request.abort_if_any(context)
        await self.catalog.refresh_if_changed()
        lease, fallback = self._choose_adapter(message)
        request.peft_name = lease.peft_name
        if fallback:
            request.warnings.insert(0, fallback)
        return request, lease

    def _response(self, request: Request, lease: Lease) -> llm_pb2.LlmGenerateResponse:
        text, completed = request.final_text()
        log.info("generated", extra={"mode": request.mode, "adapter": lease.name, "version": lease.version,
                                     "tokens": len(request.generated), "stop": request.stop_reason})
        return llm_pb2.LlmGenerateResponse(
            generated_text=text, model="gpt2", base_model=self.engine.base_model_name, mode=request.mode,
            adapter=lease.name, adapter_version=lease.version,
            warning="; ".join(request.warnings) or None, format_completed_by_service=completed,
            generated_tokens=len(request.generated))

    async def Generate(self, message, context):
        request, lease = await self._prepare(message, context)
        try:
            await generate(self.engine, request, context)
            return self._response(request, lease)
        except GenerationFailed as failure:
            await context.abort(failure.code, str(failure))
        finally:
            self.catalog.release(lease)

    async def GenerateStream(self, message, context):
        request, lease = await self._prepare(message, context)
        try:
            generation = Generation(self.engine, request, context, streamed=True)
        except GenerationFailed as failure:  # the queue is full: refused before the stream begins (429)
            self.catalog.release(lease)
            await context.abort(failure.code, str(failure))
        try:
            sent = [request.lead]
            yield llm_pb2.LlmGenerateChunk(text=request.lead)
            async for piece in generation.pieces():
                sent.append(piece)
                yield llm_pb2.LlmGenerateChunk(text=piece)
            await generation.result()
            final = self._response(request, lease)
            yield llm_pb2.LlmGenerateChunk(text=final.generated_text[len("".join(sent)):], final=final)
        except GenerationFailed as failure:
            await context.abort(failure.code, str(failure))
        finally:
            generation.close()
            self.catalog.release(lease)

    async def GetStatus(self, request, context):
        return self._status()

    async def ReloadAdapters(self, request, context):
        if self.ready:
            await self.catalog.refresh()
        return self._status()

    def _status(self) -> llm_pb2.LlmStatus:
        stats, scheduler, cache = self.engine.stats, self.engine.scheduler, self.engine.prefix_cache
        return llm_pb2.LlmStatus(
            base_model=self.engine.base_model_name, loaded=self.ready, reason=self.engine.unavailable_reason,
            adapters=[llm_pb2.AdapterStatus(**a) for a in self.catalog.status()],
            in_flight=stats.in_flight, batches=stats.admissions, batched_requests=stats.admitted,
            largest_batch=stats.largest_batch, max_batch_size=scheduler.max_batch_size,
            queued=len(scheduler), max_queued=scheduler.max_queued, batching=scheduler.policy,
            device=str(self.engine.placement.device), dtype=self.engine.placement.dtype_name,
            base_model_note=self.engine.spec.note if self.engine.spec else "",
            prefix_cache_tokens=cache.tokens if cache is not None else 0,
            prefix_cache_max_tokens=cache.max_tokens if cache is not None else 0,
            prefix_cache_lookups=stats.prefix_lookups, prefix_cache_hits=stats.prefix_hits)

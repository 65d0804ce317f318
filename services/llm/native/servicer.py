"""LlmService: Generate, GenerateStream, GetStatus and ReloadAdapters.

In Generate and GenerateStream, `message` is the call's LlmGenerateRequest, `plan` the `Plan` the planner makes of it
and `request` the `Request` the scheduler queues and the engine decodes (services/llm/request.py)."""
import dataclasses
import logging

import grpc
from textgen.v1 import llm_pb2, llm_pb2_grpc

from services.common.adapters import ADAPTER_NAMES, BASE
from services.common.callers import caller
from services.common.errors import Violations
from services.llm.adapters.catalog import AdapterCatalog, Lease
from services.llm.engine.core import Engine
from services.llm.generation import Generation, GenerationFailed, Leases, start_choices
from services.llm.native import planning
from services.llm.planner import Planner
from services.llm.request import Plan

log = logging.getLogger("textgen.llm")

# The seed's adapters fall back to those trained before them, then to the base model: rl -> sft -> base. Any other
# adapter is served as named or not at all.
FALLBACKS = {name: (*reversed(ADAPTER_NAMES[:i + 1]), BASE) for i, name in enumerate(ADAPTER_NAMES)} | {BASE: (BASE,)}


class LlmServicer(llm_pb2_grpc.LlmServiceServicer):
    def __init__(self, engine: Engine, catalog: AdapterCatalog, planner: Planner) -> None:
        self.engine, self.catalog, self.planner = engine, catalog, planner

    def _seen(self, name: str, who: str) -> bool:
        """Whether the caller may use the adapter: another API key's fine-tuned model is as if it did not exist."""
        published = self.catalog.published(name)
        return published is None or published.seen_by(who)

    async def _choose_adapter(self, message, context) -> tuple[Lease, str | None]:
        wanted = message.adapter or ("rl" if not message.HasField("use_rl_model") or message.use_rl_model
                                     else "sft")
        who = caller(context)
        if not self._seen(wanted, who):
            await context.abort(grpc.StatusCode.NOT_FOUND, f"adapter {wanted!r} is not available (not published); "
                                                           "GET /llm/status lists the adapters")
        for name in FALLBACKS.get(wanted, (wanted,)):
            lease = await self.catalog.acquire(name) if self._seen(name, who) else None
            if lease is not None:
                break
        if lease is None:
            code = grpc.StatusCode.UNAVAILABLE if self.catalog.is_published(wanted) else grpc.StatusCode.NOT_FOUND
            await context.abort(code, f"adapter {wanted!r} is not available ({self.catalog.why_missing(wanted)}); "
                                      "GET /llm/status lists the adapters")
        if lease.name == wanted:
            return lease, None
        version = f" (version {lease.version})" if lease.version else ""
        return lease, (f"adapter {wanted!r} is not available ({self.catalog.why_missing(wanted)}); "
                       f"used {lease.name!r}{version} instead")

    async def _start(self, message, context, leases: Leases, streamed: bool = False) -> Generation:
        """The generation of this message's request, under the adapter version it holds a lease on (in `leases`)."""
        violations = Violations()
        planning.validate(message, violations)
        await violations.abort_if_any(context)
        if not self.planner.ready:
            await context.abort(grpc.StatusCode.UNAVAILABLE, self.engine.unavailable_reason)
        await self.catalog.refresh_if_changed()
        lease, fallback = await self._choose_adapter(message, context)
        leases.add(lease)
        plan = await self._plan(message, fallback, context)
        try:
            return start_choices(self.engine, leases, plan, context, streamed)[0]
        except GenerationFailed as failure:  # the queue is full: refused before any answer (429)
            await context.abort(failure.code, str(failure))

    async def _plan(self, message, fallback: str | None, context) -> Plan:
        plan = await self.planner.run(planning.plan, message)
        if isinstance(plan, Violations):
            await plan.abort_if_any(context)
        return dataclasses.replace(plan, warnings=(fallback, *plan.warnings)) if fallback else plan

    def _response(self, generation: Generation) -> llm_pb2.LlmGenerateResponse:
        request, lease = generation.request, generation.lease
        text, completed = request.final_text()
        log.info("generated", extra={"mode": request.mode, "adapter": lease.name, "version": lease.version,
                                     "tokens": len(request.generated), "stop": request.stop_reason})
        return llm_pb2.LlmGenerateResponse(
            generated_text=text, model="gpt2", base_model=self.engine.base_model_name, mode=request.mode,
            adapter=lease.name, adapter_version=lease.version,
            warning="; ".join(request.warnings) or None, format_completed_by_service=completed,
            generated_tokens=len(request.generated))

    async def Generate(self, message, context):
        async with Leases(self.catalog) as leases, await self._start(message, context, leases) as generation:
            try:
                await generation.result()
            except GenerationFailed as failure:
                await context.abort(failure.code, str(failure))
            return self._response(generation)

    async def GenerateStream(self, message, context):
        async with Leases(self.catalog) as leases, \
                await self._start(message, context, leases, streamed=True) as generation:
            try:
                sent = [generation.request.lead]
                yield llm_pb2.LlmGenerateChunk(text=generation.request.lead)
                async for piece, _ in generation.pieces():
                    sent.append(piece)
                    yield llm_pb2.LlmGenerateChunk(text=piece)
                await generation.result()
                final = self._response(generation)
                yield llm_pb2.LlmGenerateChunk(text=final.generated_text[len("".join(sent)):], final=final)
            except GenerationFailed as failure:
                await context.abort(failure.code, str(failure))

    async def GetStatus(self, request, context):
        return self._status(caller(context))

    async def ReloadAdapters(self, request, context):
        if self.planner.ready:
            await self.catalog.refresh()
        return self._status(caller(context))

    def _status(self, who: str) -> llm_pb2.LlmStatus:
        stats, scheduler, cache = self.engine.stats, self.engine.scheduler, self.engine.prefix_cache
        return llm_pb2.LlmStatus(
            base_model=self.engine.base_model_name, loaded=self.planner.ready, reason=self.engine.unavailable_reason,
            adapters=[llm_pb2.AdapterStatus(**a) for a in self.catalog.status() if self._seen(a["name"], who)],
            in_flight=stats.in_flight, batches=stats.admissions, batched_requests=stats.admitted,
            largest_batch=stats.largest_batch, max_batch_size=scheduler.max_batch_size,
            queued=len(scheduler), max_queued=scheduler.max_queued,
            device=str(self.engine.placement.device), dtype=self.engine.placement.dtype_name,
            base_model_note=self.engine.spec.note if self.engine.spec else "",
            prefix_cache_tokens=cache.tokens if cache is not None else 0,
            prefix_cache_max_tokens=cache.max_tokens if cache is not None else 0,
            prefix_cache_lookups=stats.prefix_lookups, prefix_cache_hits=stats.prefix_hits)

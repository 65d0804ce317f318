"""LlmService: Generate, GenerateStream, GetStatus and ReloadAdapters."""
import asyncio
import logging
import time

import grpc
from textgen.v1 import llm_pb2, llm_pb2_grpc

from services.common.errors import Violations
from services.llm import requests
from services.llm.catalog import BASE, AdapterCatalog, Lease
from services.llm.decoding import Row
from services.llm.engine import Engine
from services.llm.scheduler import QueueFull

log = logging.getLogger("textgen.llm")

FALLBACKS = {"rl": ("rl", "sft", BASE), "sft": ("sft", BASE), BASE: (BASE,)}


class LlmServicer(llm_pb2_grpc.LlmServiceServicer):
    def __init__(self, engine: Engine, catalog: AdapterCatalog) -> None:
        self.engine = engine
        self.catalog = catalog
        self.planner: requests.Planner | None = None  # once the base model is loaded

    @property
    def ready(self) -> bool:
        return self.planner is not None

    async def _refresh_adapters(self, force: bool = False) -> None:
        if force or self.catalog.changed():
            await self.catalog.refresh()

    def _choose_adapter(self, request) -> tuple[Lease, str | None]:
        wanted = request.adapter or ("rl" if not request.HasField("use_rl_model") or request.use_rl_model
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

    async def _prepare(self, request, context) -> tuple[Row, Lease, list[str]]:
        violations = Violations()
        requests.validate(request, violations)
        await violations.abort_if_any(context)
        if not self.ready:
            await context.abort(grpc.StatusCode.UNAVAILABLE, self.engine.unavailable_reason)
        plan = await self.planner.plan(request)
        if isinstance(plan, Violations):
            await plan.abort_if_any(context)
        await self._refresh_adapters()
        lease, fallback = self._choose_adapter(request)
        remaining = context.time_remaining()
        row = Row(prompt_ids=plan.prompt_ids, lead=plan.lead, max_new_tokens=plan.max_new_tokens, mode=plan.mode,
                  temperature=plan.temperature, seed=plan.seed, peft_name=lease.peft_name,
                  deadline=None if remaining is None else time.monotonic() + remaining)
        return row, lease, ([fallback] if fallback else []) + plan.warnings

    async def _finish(self, row: Row, lease: Lease, warnings: list[str], context) -> llm_pb2.LlmGenerateResponse:
        if row.stop_reason == "deadline":
            await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED,
                                f"the call's deadline passed after {len(row.generated)} generated tokens")
        if row.stop_reason == "cancelled":
            await context.abort(grpc.StatusCode.CANCELLED, "the call was cancelled")
        text, completed = row.final_text()
        log.info("generated", extra={"mode": row.mode, "adapter": lease.name, "version": lease.version,
                                     "tokens": len(row.generated), "stop": row.stop_reason})
        return llm_pb2.LlmGenerateResponse(
            generated_text=text, model="gpt2", base_model=self.engine.base_model_name, mode=row.mode,
            adapter=lease.name, adapter_version=lease.version,
            warning="; ".join(warnings) or None, format_completed_by_service=completed,
            generated_tokens=len(row.generated))

    async def _submit(self, row: Row, context):
        """The row queued for decoding; past LLM_MAX_QUEUED the call ends with RESOURCE_EXHAUSTED (429) at once."""
        try:
            return self.engine.submit(row)
        except QueueFull as error:
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(error))

    @staticmethod
    async def _decode(decoding, context) -> None:
        try:
            await decoding
        except asyncio.CancelledError:
            raise
        except Exception as error:
            await context.abort(grpc.StatusCode.INTERNAL, f"generation failed: {str(error)[:300]}")

    async def Generate(self, request, context):
        row, lease, warnings = await self._prepare(request, context)
        try:
            await self._decode(await self._submit(row, context), context)
            return await self._finish(row, lease, warnings, context)
        finally:
            self.catalog.release(lease)

    async def GenerateStream(self, request, context):
        row, lease, warnings = await self._prepare(request, context)
        pieces: asyncio.Queue[str | None] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        row.on_text = lambda text: loop.call_soon_threadsafe(pieces.put_nowait, text)
        try:
            submitted = await self._submit(row, context)
        except BaseException:
            self.catalog.release(lease)
            raise
        decoding = asyncio.create_task(self._decode(submitted, context))
        decoding.add_done_callback(lambda _: pieces.put_nowait(None))
        sent = [row.lead]
        try:
            yield llm_pb2.LlmGenerateChunk(text=row.lead)
            while (piece := await pieces.get()) is not None:
                sent.append(piece)
                yield llm_pb2.LlmGenerateChunk(text=piece)
            await decoding
            final = await self._finish(row, lease, warnings, context)
            streamed = "".join(sent)
            yield llm_pb2.LlmGenerateChunk(text=final.generated_text[len(streamed):], final=final)
        finally:
            row.cancelled = row.cancelled or not decoding.done()
            decoding.cancel()
            self.catalog.release(lease)

    async def GetStatus(self, request, context):
        return self._status()

    async def ReloadAdapters(self, request, context):
        if self.ready:
            await self._refresh_adapters(force=True)
        return self._status()

    def _status(self) -> llm_pb2.LlmStatus:
        stats, scheduler = self.engine.stats, self.engine.scheduler
        return llm_pb2.LlmStatus(
            base_model=self.engine.base_model_name, loaded=self.ready, reason=self.engine.unavailable_reason,
            adapters=[llm_pb2.AdapterStatus(**a) for a in self.catalog.status()],
            in_flight=stats.in_flight, batches=stats.admissions, batched_requests=stats.admitted,
            largest_batch=stats.largest_batch, max_batch_size=scheduler.max_batch_size,
            queued=len(scheduler), max_queued=scheduler.max_queued, batching=scheduler.policy,
            device=str(self.engine.placement.device), dtype=self.engine.placement.dtype_name,
            base_model_note=self.engine.spec.note if self.engine.spec else "")

"""One planned `Request` run on the engine for one gRPC call, holding a lease on its adapter version (the catalog's,
services/llm/adapters/catalog.py) until the call ends. `start` plans it and queues it at once (refused past
LLM_MAX_QUEUED); it is decoded in the running batch and ends as the call ends: at its deadline, or when the caller
goes away (the request is marked cancelled and leaves the batch at the next step). LlmService and the
OpenAI-compatible services both run their requests through here; each turns a `GenerationFailed` into its own kind of
error."""
import asyncio
import time
from collections.abc import AsyncIterator, Awaitable

import grpc

from services.llm.adapters.catalog import AdapterCatalog, Lease
from services.llm.engine.core import Engine
from services.llm.engine.scheduler import QueueFull
from services.llm.request import Request
from services.llm.states import StopReason


class GenerationFailed(Exception):
    """The call ends with this status instead of an answer."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


async def start(engine: Engine, catalog: AdapterCatalog, lease: Lease, planned: Awaitable[Request],
                context: grpc.aio.ServicerContext, streamed: bool = False) -> "Generation":
    """The generation of the request `planned` gives, with the adapter version `lease` holds, queued with the call's
    deadline. The lease goes back when the generation closes, or at once when planning or queueing fails
    (GenerationFailed with RESOURCE_EXHAUSTED when the queue is full)."""
    try:
        request = await planned
        request.peft_name = lease.peft_name
        return Generation(engine, request, lease, lambda: catalog.release(lease, len(request.generated)), context,
                          streamed)
    except BaseException:
        catalog.release(lease)
        raise


class Generation:
    """`streamed` makes `pieces()` yield the text as it is decoded; `result()` ends with the finished request. Use it
    as an async context manager (or call `close()`) so that it ends with the call."""

    def __init__(self, engine: Engine, request: Request, lease: Lease, release, context: grpc.aio.ServicerContext,
                 streamed: bool) -> None:
        self.request, self.lease, self._release = request, lease, release
        remaining = context.time_remaining()
        request.deadline = None if remaining is None else time.monotonic() + remaining
        self._pieces: asyncio.Queue[str | None] = asyncio.Queue()
        if streamed:
            loop = asyncio.get_running_loop()
            request.on_text = lambda text: loop.call_soon_threadsafe(self._pieces.put_nowait, text)
        try:
            decoding = engine.submit(request)
        except QueueFull as error:
            raise GenerationFailed(grpc.StatusCode.RESOURCE_EXHAUSTED, str(error)) from None
        self._decoding = asyncio.ensure_future(decoding)
        self._decoding.add_done_callback(lambda _: self._pieces.put_nowait(None))

    async def __aenter__(self) -> "Generation":
        return self

    async def __aexit__(self, *exc_info) -> None:
        self.close()

    async def pieces(self) -> AsyncIterator[str]:
        """The text as it is decoded, until decoding ends (then `result()` says how)."""
        while (piece := await self._pieces.get()) is not None:
            yield piece

    async def result(self) -> Request:
        """The finished request; GenerationFailed when it failed, passed its deadline or was cancelled."""
        try:
            await self._decoding
        except asyncio.CancelledError:
            raise
        except Exception as error:
            raise GenerationFailed(grpc.StatusCode.INTERNAL, f"generation failed: {str(error)[:300]}") from None
        if self.request.stop_reason == StopReason.DEADLINE:
            raise GenerationFailed(grpc.StatusCode.DEADLINE_EXCEEDED, "the call's deadline passed after "
                                   f"{len(self.request.generated)} generated tokens")
        if self.request.stop_reason == StopReason.CANCELLED:
            raise GenerationFailed(grpc.StatusCode.CANCELLED, "the call was cancelled")
        return self.request

    def close(self) -> None:
        """The call is over: a request still queued or decoding is cancelled, which frees its place at once, and the
        lease goes back (once)."""
        if not self._decoding.done():
            self.request.cancelled = True
            self._decoding.cancel()
        release, self._release = self._release, lambda: None
        release()

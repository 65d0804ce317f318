"""One planned `Request` run on the engine for one gRPC call, whole or piece by piece: queued at once (refused past
LLM_MAX_QUEUED), decoded in the running batch, and ended as the call ends: at its deadline, or when the caller goes
away (the request is marked cancelled and leaves the batch at the next step). LlmService and the OpenAI-compatible
services run their requests through here; each turns a `GenerationFailed` into its own kind of error."""
import asyncio
import time
from collections.abc import AsyncIterator

import grpc

from services.llm.engine import Engine
from services.llm.request import Request
from services.llm.scheduler import QueueFull


class GenerationFailed(Exception):
    """The call ends with this status instead of an answer."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


class Generation:
    """Submits `request` now, with the call's deadline (GenerationFailed with RESOURCE_EXHAUSTED when the queue is
    full); `streamed` makes `pieces()` yield its text as it is decoded. `close()` when the call ends."""

    def __init__(self, engine: Engine, request: Request, context: grpc.aio.ServicerContext,
                 streamed: bool = False) -> None:
        self.request = request
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
        if self.request.stop_reason == "deadline":
            raise GenerationFailed(grpc.StatusCode.DEADLINE_EXCEEDED, "the call's deadline passed after "
                                   f"{len(self.request.generated)} generated tokens")
        if self.request.stop_reason == "cancelled":
            raise GenerationFailed(grpc.StatusCode.CANCELLED, "the call was cancelled")
        return self.request

    def close(self) -> None:
        """The call is over: a request still queued or decoding is cancelled, which frees its place at once."""
        if not self._decoding.done():
            self.request.cancelled = True
            self._decoding.cancel()


async def generate(engine: Engine, request: Request, context: grpc.aio.ServicerContext) -> Request:
    """`request` run whole for a unary call: the finished request, or GenerationFailed."""
    generation = Generation(engine, request, context)
    try:
        return await generation.result()
    finally:
        generation.close()

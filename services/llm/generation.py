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
        request.slot = lease.slot
        return Generation(engine, request, lease, lambda: catalog.release(lease, len(request.generated)), context,
                          streamed)
    except BaseException:
        catalog.release(lease)
        raise


async def start_choices(engine: Engine, catalog: AdapterCatalog, leases: list[Lease], planned: Awaitable[Request],
                        context: grpc.aio.ServicerContext, streamed: bool = False) -> list["Generation"]:
    """One generation per lease of the request `planned` gives: choice i samples with seed + i (`Request.sibling`).
    They are queued together, and their rows share the prompt's prefill (services/llm/engine/prefilling.py). If one
    cannot be queued, none runs."""
    try:
        first = await planned
    except BaseException:
        for lease in leases:
            catalog.release(lease)
        raise
    requests = [first] + [first.sibling(index) for index in range(1, len(leases))]
    generations = []
    try:
        for lease, request in zip(leases, requests):
            generations.append(await start(engine, catalog, lease, _planned(request), context, streamed))
    except BaseException:
        for generation in generations:
            generation.close()
        for lease in leases[len(generations) + 1:]:  # start() gave back the lease of the one that failed
            catalog.release(lease)
        raise
    return generations


async def _planned(request: Request) -> Request:
    return request


async def interleaved(generations: list["Generation"]) -> AsyncIterator[tuple[int, str, int]]:
    """The pieces of several streamed generations as they come, each with its generation's index."""
    merged: asyncio.Queue[tuple[int, str, int] | None] = asyncio.Queue()

    async def forward(index: int, generation: Generation) -> None:
        async for text, tokens in generation.pieces():
            merged.put_nowait((index, text, tokens))
        merged.put_nowait(None)

    tasks = [asyncio.ensure_future(forward(i, generation)) for i, generation in enumerate(generations)]
    try:
        running = len(tasks)
        while running:
            if (piece := await merged.get()) is None:
                running -= 1
            else:
                yield piece
    finally:
        for task in tasks:
            task.cancel()


class Generation:
    """`streamed` makes `pieces()` yield the text as it is decoded; `result()` ends with the finished request. Use it
    as an async context manager (or call `close()`) so that it ends with the call."""

    def __init__(self, engine: Engine, request: Request, lease: Lease, release, context: grpc.aio.ServicerContext,
                 streamed: bool) -> None:
        self.request, self.lease, self._release = request, lease, release
        remaining = context.time_remaining()
        request.deadline = None if remaining is None else time.monotonic() + remaining
        self._pieces: asyncio.Queue[tuple[str, int] | None] = asyncio.Queue()
        if streamed:
            loop = asyncio.get_running_loop()
            # Called on the engine thread as each token is accepted: len(generated) counts the piece's tokens.
            request.on_text = lambda text: loop.call_soon_threadsafe(self._pieces.put_nowait,
                                                                     (text, len(request.generated)))
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

    async def pieces(self) -> AsyncIterator[tuple[str, int]]:
        """The text as it is decoded, each piece with the count of tokens generated up to it, until decoding ends
        (then `result()` says how)."""
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

"""One planned request run on the engine for one gRPC call, holding a lease on its adapter version (the catalog's,
services/llm/adapters/catalog.py) until the call ends. `Leases` owns a call's leases from the moment they are taken:
whatever fails afterwards (planning, queueing, decoding) or however the call ends, each goes back once, when the
`async with` block ends. `start_choices` queues the plan's generations at once (refused past LLM_MAX_QUEUED); each is
decoded in the running batch and ends as the call ends: at its deadline, or when the caller goes away (the request is
marked cancelled and leaves the batch at the next step). LlmService and the OpenAI-compatible services both run their
requests through here; each turns a `GenerationFailed` into its own kind of error."""
import asyncio
import time
from collections.abc import AsyncIterator

import grpc

from services.llm.adapters.catalog import AdapterCatalog, Lease
from services.llm.engine.core import Engine
from services.llm.engine.scheduler import QueueFull
from services.llm.request import Plan, Request
from services.llm.states import StopReason


class GenerationFailed(Exception):
    """The call ends with this status instead of an answer."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


class Leases:
    """A call's leases, one per choice, owned from when each is taken (`add`) to the end of the `async with` block,
    where each goes back to the catalog with the tokens generated under it."""

    def __init__(self, catalog: AdapterCatalog) -> None:
        self.catalog = catalog
        self._held: list[tuple[Lease, list[Request]]] = []  # each lease and the request generated under it, if any

    def add(self, lease: Lease) -> None:
        self._held.append((lease, []))

    def __iter__(self):
        return iter([lease for lease, _ in self._held])

    def generated_under(self, index: int, request: Request) -> None:
        """`request` generates under lease `index`: its tokens are counted when the lease goes back."""
        self._held[index][1].append(request)

    async def __aenter__(self) -> "Leases":
        return self

    async def __aexit__(self, *exc_info) -> None:
        held, self._held = self._held, []
        for lease, requests in held:
            self.catalog.release(lease, sum(len(request.generated) for request in requests))


def start_choices(engine: Engine, leases: Leases, plan: Plan, context: grpc.aio.ServicerContext,
                  streamed: bool = False) -> list["Generation"]:
    """One generation per lease of `plan`: choice i samples with seed + i (`Request.sibling`). They are queued
    together, and their rows share the prompt's prefill (services/llm/engine/prefilling.py). If one cannot be queued
    (GenerationFailed with RESOURCE_EXHAUSTED), none runs."""
    first = Request(plan=plan)
    generations = []
    try:
        for index, lease in enumerate(leases):
            request = first if index == 0 else first.sibling(index)
            request.slot = lease.slot
            leases.generated_under(index, request)
            generations.append(Generation(engine, request, lease, context, streamed))
    except BaseException:
        for generation in generations:
            generation.close()
        raise
    return generations


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
    as an async context manager (or call `close()`) so that its decoding ends with the call."""

    def __init__(self, engine: Engine, request: Request, lease: Lease, context: grpc.aio.ServicerContext,
                 streamed: bool) -> None:
        self.request, self.lease = request, lease
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
        """The call is over: a request still queued or decoding is cancelled, which frees its place at once."""
        if not self._decoding.done():
            self.request.cancelled = True
            self._decoding.cancel()

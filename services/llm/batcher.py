"""Dynamic batching: requests that arrive while the engine is busy, or less than LLM_BATCH_WINDOW_MS apart, are
generated together as one batch (at most LLM_MAX_BATCH_SIZE; 1 turns batching off)."""
import asyncio
import dataclasses
import logging
import time

import prometheus_client

from services.llm.decoding import Row
from services.llm.engine import Engine

log = logging.getLogger("textgen.llm")

MAX_WINDOWS = 10  # a steady trickle of arrivals cannot hold a batch open for ever
BATCH_SIZE = prometheus_client.Histogram("textgen_llm_batch_size", "Requests decoded together in one batch.",
                                         buckets=(1, 2, 3, 4, 6, 8, 12, 16, 32))
GENERATED_TOKENS = prometheus_client.Counter("textgen_llm_generated_tokens_total",
                                             "Tokens generated, by how the answer ended.", ["stop"])


@dataclasses.dataclass
class BatchStats:
    batches: int = 0
    rows: int = 0
    largest: int = 0
    in_flight: int = 0


class Batcher:
    def __init__(self, engine: Engine, window_ms: float, max_batch_size: int) -> None:
        self.engine = engine
        self.window = max(0.0, window_ms) / 1000
        self.max_batch_size = max(1, max_batch_size)
        self.stats = BatchStats()
        self._queue: asyncio.Queue[tuple[Row, asyncio.Future]] = asyncio.Queue()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="llm-batcher")

    async def generate(self, row: Row) -> Row:
        """Queues `row` and waits until it is decoded (not until its whole batch is). If the caller is cancelled
        the row is marked cancelled, so the engine drops it at its next token (or never starts it)."""
        loop = asyncio.get_running_loop()
        finished = loop.create_future()
        row.on_done = lambda: loop.call_soon_threadsafe(self._resolve, finished, row, None)
        self.stats.in_flight += 1
        self._queue.put_nowait((row, finished))
        try:
            return await asyncio.shield(finished)
        except asyncio.CancelledError:
            row.cancelled = True
            raise

    def _resolve(self, finished: asyncio.Future, row: Row, error: Exception | None) -> None:
        if finished.done():
            return
        self.stats.in_flight -= 1
        if error is not None:
            finished.set_exception(error)
        else:
            finished.set_result(row)

    async def _take_batch(self) -> list[tuple[Row, asyncio.Future]]:
        """Waits for the first request, then keeps the batch open while requests keep arriving: it closes when
        none has come for one window, when it is full, or after MAX_WINDOWS windows in all."""
        batch = [await self._queue.get()]
        last_call = time.monotonic() + self.window * MAX_WINDOWS
        while len(batch) < self.max_batch_size:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                continue
            wait = min(self.window, last_call - time.monotonic())
            if wait <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), wait))
            except TimeoutError:
                break
        return batch

    async def _run(self) -> None:
        while True:
            batch = await self._take_batch()
            live = [row for row, _ in batch if not row.cancelled]
            for row, finished in batch:
                if row.cancelled:
                    row.stop_reason = "cancelled"
                    self._resolve(finished, row, None)
            if not live:
                continue
            self.stats.batches += 1
            self.stats.rows += len(live)
            self.stats.largest = max(self.stats.largest, len(live))
            BATCH_SIZE.observe(len(live))
            error = None
            try:
                await self.engine.generate(live)
            except Exception as exc:  # reported to each caller; the batcher itself keeps running
                log.exception("batch failed", extra={"rows": len(live)})
                error = exc
            for row, finished in batch:
                self._resolve(finished, row, error if not row.done else None)
            for row in live:
                GENERATED_TOKENS.labels(row.stop_reason or "error").inc(len(row.generated))

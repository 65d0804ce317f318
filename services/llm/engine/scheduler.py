"""Which waiting requests join the running batch, and when.

Continuous batching: at every engine step the waiting requests are admitted first come, first served while the batch
has room: at most LLM_MAX_BATCH_SIZE rows and LLM_MAX_BATCH_TOKENS of KV cache (each request counted at the most it
can hold: prompt + max_new_tokens). Admission stops at the first request that does not fit, so a large request is
never overtaken for ever by smaller ones behind it; one that could never fit is admitted alone into an empty batch.
When the batch is full and LLM_MAX_QUEUED requests already wait, a new one is refused at once (QueueFull); requests
that will take a free place in the batch at the next step do not count as waiting.

`submit` runs on the event loop, `take` on the engine thread: the waiting line is guarded by a lock.
"""
import collections
import dataclasses
import threading
import time
from collections.abc import Callable

from services.llm.request import Request


class QueueFull(Exception):
    """LLM_MAX_QUEUED requests are already waiting."""


@dataclasses.dataclass
class Taken:
    admitted: list[Request]
    dropped: list[Request]  # cancelled or past their deadline while waiting


class Scheduler:
    def __init__(self, max_batch_size: int, max_batch_tokens: int, max_queued: int,
                 running_rows: Callable[[], int] = lambda: 0) -> None:
        self.max_batch_size = max(1, max_batch_size)
        self.max_batch_tokens = max_batch_tokens
        self.max_queued = max_queued
        self._waiting: collections.deque[Request] = collections.deque()
        self._lock = threading.Lock()
        self._running_rows = running_rows  # the running batch's rows now (the engine's)

    def __len__(self) -> int:
        return len(self._waiting)

    def submit(self, request: Request) -> None:
        with self._lock:
            free_places = max(0, self.max_batch_size - self._running_rows())
            if len(self._waiting) >= self.max_queued + free_places:
                raise QueueFull(f"the batch is full and {self.max_queued} requests are already waiting "
                                "(LLM_MAX_QUEUED); retry shortly")
            request.submitted_at = time.monotonic()
            self._waiting.append(request)

    def take(self, running_rows: int, running_tokens: int) -> Taken:
        """The requests to admit now into a batch of `running_rows` holding up to `running_tokens`."""
        taken = Taken([], [])
        now = time.monotonic()
        with self._lock:
            for request in list(self._waiting):
                request.check_interrupts(now)
                if request.done:
                    self._waiting.remove(request)
                    taken.dropped.append(request)
            while self._waiting and running_rows + len(taken.admitted) < self.max_batch_size:
                request = self._waiting[0]
                empty = running_rows + len(taken.admitted) == 0
                if not empty and running_tokens + request.tokens_held > self.max_batch_tokens:
                    break
                taken.admitted.append(self._waiting.popleft())
                running_tokens += request.tokens_held
        return taken

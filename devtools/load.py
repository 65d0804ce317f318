"""Requests around an event: clients posting one request after another through the gateway while something happens
to the system (a replica killed), so that a check can count what failed before and after it."""
import concurrent.futures
import dataclasses
import threading
import time
from collections.abc import Callable

import httpx


@dataclasses.dataclass
class Outcomes:
    answered: list[tuple[int | str, str]]  # (status code, or the transport error's name; body) of every request
    before_event: int  # how many of them were answered before the event

    @property
    def failures(self) -> list[tuple[int | str, str]]:
        return [outcome for outcome in self.answered if outcome[0] != 200]


def requests_around(client: httpx.Client, path: str, body: dict, event: Callable[[], None], before_s: float,
                    after_s: float, clients: int = 4) -> Outcomes:
    """`clients` threads post `body` to `path` back to back; `event` runs after `before_s`, the load stops `after_s`
    after it. A transport error counts as a failed request, not as a thread that quietly stopped."""
    answered: list[tuple[int | str, str]] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            try:
                response = client.post(path, json=body)
                answered.append((response.status_code, response.text))
            except httpx.HTTPError as error:
                answered.append((type(error).__name__, str(error)))

    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        for _ in range(clients):
            pool.submit(load)
        time.sleep(before_s)
        before_event = len(answered)
        try:
            event()
            time.sleep(after_s)
        finally:
            stop.set()
    return Outcomes(answered, before_event)

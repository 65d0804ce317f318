"""The life of a loaded adapter version, as the catalog (services/llm/adapters/catalog.py) keeps it: its states in
one type, and every change of state in one class.

    (loaded) ──► CURRENT ──retire──► LINGERING ──last lease released──► UNLOADED
                    │  ▲                 │
                    │  └──────back───────┘   asked for again while still in its slot
                    └──retire, no lease held──────────────────────────► UNLOADED

A CURRENT version serves new requests under its adapter's name. A newer version, an eviction or a withdrawal
retires it: with requests still holding it, it LINGERS in its slot until the last one ends (a request keeps the
version it started with), and a request asking for it again meanwhile brings it back into service without a load;
with none, or once its last request ends, it is UNLOADED: the engine lets its slot go.
"""
import asyncio
import dataclasses
import enum
import logging
import pathlib
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger("textgen.llm")


class State(enum.StrEnum):
    CURRENT = "current"
    LINGERING = "lingering"
    UNLOADED = "unloaded"


@dataclasses.dataclass(eq=False)
class LoadedVersion:
    name: str
    version: str
    path: pathlib.Path
    slot: str  # the engine's slot holding its weights
    base_model: str
    leases: int = 0  # requests holding it
    last_used: float = dataclasses.field(default_factory=time.monotonic)  # its latest lease: the least recent goes
    state: State = State.CURRENT


@dataclasses.dataclass
class Lease:
    """What one request generates with: an adapter version (or the base model), held until the request ends."""
    name: str
    version: str
    slot: str
    loaded: LoadedVersion | None = None


class HeldVersions:
    """The versions in the engine's slots: at most one CURRENT per adapter name, and the LINGERING ones. Runs on the
    event loop; `unload_slot` is the engine's, called once for each version that becomes UNLOADED."""

    def __init__(self, unload_slot: Callable[[str], Awaitable[None]]) -> None:
        self._unload_slot = unload_slot
        self.current: dict[str, LoadedVersion] = {}
        self._lingering: dict[tuple[str, str], LoadedVersion] = {}
        self.unloads = 0  # versions unloaded so far: a load waiting for a free slot waits for this to move
        self._unload_done = asyncio.Condition()

    def serve(self, loaded: LoadedVersion) -> None:
        """A version just loaded into its slot serves its adapter's name (the one serving it before retires)."""
        previous = self.current.get(loaded.name)
        self.current[loaded.name] = loaded
        if previous is not None:
            self._retire(previous)

    def back(self, name: str, version: str) -> LoadedVersion | None:
        """`version` of `name` serving again, if it lingers in its slot (no load needed); else None."""
        loaded = self._lingering.pop((name, version), None)
        if loaded is not None:
            loaded.state, loaded.last_used = State.CURRENT, time.monotonic()
            self.current[name] = loaded
        return loaded

    def retire(self, name: str) -> LoadedVersion:
        """`name`'s current version stops serving new requests."""
        loaded = self.current.pop(name)
        self._retire(loaded)
        return loaded

    def _retire(self, loaded: LoadedVersion) -> None:
        if loaded.leases:
            loaded.state = State.LINGERING
            self._lingering[(loaded.name, loaded.version)] = loaded
        else:
            self._unloaded(loaded)

    def lease(self, loaded: LoadedVersion) -> None:
        loaded.leases += 1
        loaded.last_used = time.monotonic()

    def release(self, loaded: LoadedVersion) -> None:
        loaded.leases -= 1
        if loaded.state == State.LINGERING and loaded.leases == 0:
            del self._lingering[(loaded.name, loaded.version)]
            self._unloaded(loaded)

    def _unloaded(self, loaded: LoadedVersion) -> None:
        loaded.state = State.UNLOADED
        asyncio.get_running_loop().create_task(self._unload(loaded))

    async def _unload(self, loaded: LoadedVersion) -> None:
        await self._unload_slot(loaded.slot)
        async with self._unload_done:
            self.unloads += 1
            self._unload_done.notify_all()
        log.info("adapter version unloaded", extra={"adapter": loaded.name, "version": loaded.version})

    async def unloaded_since(self, unloads: int) -> None:
        """Returns once a version has been unloaded since `unloads` was read."""
        async with self._unload_done:
            await self._unload_done.wait_for(lambda: self.unloads != unloads)

"""Which LoRA adapter versions the service serves: the event loop's side of adapter management.

Every adapter published under MODELS_DIR/adapters is served, by the name of its folder: the catalog reads each one's
current version (services/llm/adapters/published.py), decides what the engine holds, and hands out leases. At most
LLM_MAX_LOADED_ADAPTERS are held: a request for one that is not loads it first (other requests keep decoding; loads
of one adapter are shared), and the least recently used goes to make room (one no request holds first). A version's
life once loaded (serving, lingering for the requests that hold it, unloaded) is services/llm/adapters/versions.py's.
A version's files are read here, off the engine thread, once; the engine copies them into a slot (slots.py) and,
with every slot holding a version in use, the load waits for one to be unloaded. Only the engine changes the model;
the catalog tells it what to do, as vLLM's scheduler tells its worker-side LoRA manager. All on the event loop.
"""
import asyncio
import dataclasses
import logging
import pathlib
import time
from typing import Protocol

from services.common import adapters
from services.llm import metrics
from services.llm.adapters import files
from services.llm.adapters.published import Published, adapter_names, published_version, signature
from services.llm.adapters.versions import HeldVersions, Lease, LoadedVersion
from services.llm.request import NO_ADAPTER

log = logging.getLogger("textgen.llm")


class AdapterLoader(Protocol):
    """What the catalog asks of the engine, run on its thread between steps: `load_adapter` returns the slot the
    adapter's rows use (NoFreeSlot while every slot holds a version in use), `unload_adapter` lets a slot go."""

    async def load_adapter(self, adapter: files.AdapterFiles) -> str: ...

    async def unload_adapter(self, slot: str) -> None: ...


@dataclasses.dataclass
class AdapterUse:
    """One adapter's figures since start-up, for the status."""
    requests: int = 0
    generated_tokens: int = 0
    loads: int = 0
    last_load_seconds: float = 0.0
    last_load_error: str = ""


class AdapterCatalog:
    def __init__(self, models_dir: pathlib.Path, loader: AdapterLoader, max_loaded: int = 8,
                 load_timeout_s: float = 60.0, always_listed: tuple[str, ...] = adapters.ADAPTER_NAMES) -> None:
        self.models_dir, self.loader = pathlib.Path(models_dir), loader
        self.max_loaded, self.load_timeout_s = max(1, max_loaded), load_timeout_s
        self.names = self.always_listed = tuple(always_listed)
        self.use: dict[str, AdapterUse] = {}
        self._held = HeldVersions(loader.unload_adapter)  # what the engine's slots hold, and each version's state
        self._current = self._held.current  # the version serving each adapter name
        self._errors: dict[str, str] = {}
        self._published: dict[str, Published] = {}
        self._loading: dict[str, asyncio.Task] = {}
        self._waiting: dict[str, int] = {}  # requests waiting for each adapter's load
        self._signature = None
        self._arriving = 0  # adapters being loaded that are not loaded yet: they count against the bound
        self._refreshing = asyncio.Lock()
        self.base_fingerprint: str | None = None  # the served base model's, once it is loaded (`open`)

    async def open(self, base_fingerprint: str) -> None:
        """Starts serving once the base model is loaded: the versions trained on it are loaded, as many as fit."""
        self.base_fingerprint = base_fingerprint
        await self.refresh()

    def changed(self) -> bool:
        """A few stat calls on every request (no listing of the folder): whether an adapter folder came or went or a
        CURRENT pointer moved since the last refresh."""
        return signature(self.models_dir, self.names) != self._signature

    async def refresh_if_changed(self) -> None:
        """What a request calls first: a newly published version is served from the next request on. A request
        arriving while a refresh reads waits for it: the refresh takes the folder's new signature before it has
        read what changed, so the request would otherwise be answered from what it is replacing."""
        if self.changed():
            await self.refresh()
        elif self._refreshing.locked():
            async with self._refreshing:
                pass

    async def refresh(self) -> None:
        """Reads what is published. A loaded adapter with a new version gets it (the old one retires); one not
        loaded is loaded while there is room, else on demand. A version that cannot be served (refused, or failing
        to load) leaves the previous one serving, with the reason in the status; only a withdrawn one (no version
        published) takes the adapter out of service."""
        async with self._refreshing:
            self.names = adapter_names(self.models_dir, self.always_listed)
            self._signature = signature(self.models_dir, self.names)
            for name in self.names:
                published = await asyncio.to_thread(published_version, self.models_dir, name, self.base_fingerprint)
                self._published[name] = published
                current = self._current.get(name)
                if current is not None and published.version == current.version and published.path is not None:
                    continue
                if published.path is None:
                    if current is not None and published.version is not None:
                        self._errors[name] = f"{published.error}; still serving version {current.version}"
                        continue
                    if current is not None:
                        self._held.retire(name)
                    self._errors[name] = published.error
                    continue
                if current is not None or len(self._current) < self.max_loaded:
                    await self._load(name)
            for name in set(self._published) - set(self.names):  # its folder is gone
                self._published.pop(name)
                self._errors.pop(name, None)
                if name in self._current:
                    self._held.retire(name)
            metrics.ADAPTERS_LOADED.set(len(self._current))

    async def acquire(self, name: str) -> Lease | None:
        """A lease on `name`'s current version, loading it first when it is published but not loaded (within
        LLM_ADAPTER_LOAD_TIMEOUT_S); None when it cannot be served (`why_missing` says why)."""
        if name == adapters.BASE:
            return Lease(adapters.BASE, "", NO_ADAPTER)
        if name not in self._current and self.is_published(name):
            await self._await_load(name)
        loaded = self._current.get(name)
        if loaded is None:
            return None
        self._held.lease(loaded)
        self._use(name).requests += 1
        metrics.ADAPTER_REQUESTS.labels(name).inc()
        return Lease(name, loaded.version, loaded.slot, loaded)

    async def _await_load(self, name: str) -> None:
        """Waits for `name` to be loaded, within LLM_ADAPTER_LOAD_TIMEOUT_S. Meanwhile it counts as in use, so that
        another load makes room with it only when every adapter is in use; if that happens it is loaded again."""
        deadline = asyncio.get_running_loop().time() + self.load_timeout_s
        self._waiting[name] = self._waiting.get(name, 0) + 1
        try:
            while name not in self._current and self.is_published(name):
                if not await asyncio.wait_for(asyncio.shield(self._load(name)),
                                              deadline - asyncio.get_running_loop().time()):
                    return  # failed: _errors says why
        except TimeoutError:
            self._errors[name] = (f"loading it took longer than LLM_ADAPTER_LOAD_TIMEOUT_S="
                                  f"{self.load_timeout_s:g} s; retry shortly")
        finally:
            self._waiting[name] -= 1

    def release(self, lease: Lease, generated_tokens: int = 0) -> None:
        version = lease.loaded
        if version is None:
            return
        self._use(lease.name).generated_tokens += generated_tokens
        metrics.ADAPTER_GENERATED_TOKENS.labels(lease.name).inc(generated_tokens)
        self._held.release(version)

    def is_published(self, name: str) -> bool:
        """Whether `name` has a current version that can be served here."""
        published = self._published.get(name)
        return published is not None and published.path is not None

    def published(self, name: str) -> Published | None:
        """What the last refresh read of `name`'s current version (whose it is, whether a chat model)."""
        return self._published.get(name)

    def why_missing(self, name: str) -> str:
        return self._errors.get(name) or self._published.get(name, Published(None, None, "not published")).error

    def _use(self, name: str) -> AdapterUse:
        return self.use.setdefault(name, AdapterUse())

    def _load(self, name: str) -> asyncio.Task:
        """The load of `name`'s published version: one task, however many requests wait for it."""
        task = self._loading.get(name)
        if task is None:
            task = self._loading[name] = asyncio.get_running_loop().create_task(self._load_published(name))
            task.add_done_callback(lambda _: self._loading.pop(name, None))
        return task

    async def _load_published(self, name: str) -> bool:
        published, current = self._published[name], self._current.get(name)
        if current is None:
            self._make_room()
            if self._held.back(name, published.version) is not None:  # still in its slot: no load
                metrics.ADAPTERS_LOADED.set(len(self._current))
                return True
        use, started = self._use(name), time.monotonic()
        self._arriving += current is None
        try:
            slot = await self._load_into_slot(await asyncio.to_thread(files.read, published.path))
        except Exception as error:  # a broken or mismatched adapter must not take the service down
            reason = f"version {published.version} failed to load: {str(error)[:300]}"
            still = f"; still serving version {current.version}" if current is not None else ""
            use.last_load_error = self._errors[name] = reason + still
            log.warning("adapter not loaded", extra={"adapter": name, "error": reason})
            metrics.ADAPTER_LOADS.labels(name, "failed").inc()
            return False
        finally:
            self._arriving -= current is None
        use.loads, use.last_load_seconds, use.last_load_error = use.loads + 1, time.monotonic() - started, ""
        metrics.ADAPTER_LOADS.labels(name, "loaded").inc()
        metrics.ADAPTER_LOAD_SECONDS.observe(use.last_load_seconds)
        self._held.serve(LoadedVersion(name, published.version, published.path, slot, published.base_model))
        metrics.ADAPTERS_LOADED.set(len(self._current))
        self._errors.pop(name, None)
        log.info("adapter loaded", extra={"adapter": name, "version": published.version, "path": str(published.path),
                                          "seconds": round(use.last_load_seconds, 3)})
        return True

    async def _load_into_slot(self, adapter: files.AdapterFiles) -> str:
        """The engine's slot the adapter was copied into, once one is free."""
        while True:
            unloads = self._held.unloads
            try:
                return await self.loader.load_adapter(adapter)
            except files.NoFreeSlot:
                self._let_idle_go()
                await self._held.unloaded_since(unloads)

    def _let_idle_go(self) -> None:
        """Every slot holds a version: the least recently used adapter that no request holds or waits for gives its
        slot up (unloaded at once). With none idle, the load waits for a request to end."""
        idle = [loaded for loaded in self._current.values() if not self._in_use(loaded)]
        if idle:
            self._evict(min(idle, key=lambda loaded: loaded.last_used))

    def _make_room(self) -> None:
        """At LLM_MAX_LOADED_ADAPTERS the least recently used adapter goes, one no request holds first (its slot is
        free at once; another's once its requests end)."""
        while self._current and len(self._current) + self._arriving >= self.max_loaded:
            self._evict(min(self._current.values(), key=lambda loaded: (self._in_use(loaded), loaded.last_used)))

    def _in_use(self, loaded: LoadedVersion) -> bool:  # a request holds it or waits for its adapter
        return loaded.leases > 0 or self._waiting.get(loaded.name, 0) > 0

    def _evict(self, loaded: LoadedVersion) -> None:
        log.info("adapter evicted", extra={"adapter": loaded.name, "version": loaded.version})
        self._held.retire(loaded.name)
        metrics.ADAPTERS_LOADED.set(len(self._current))

    def status(self) -> list[dict]:
        rows = []
        for name in self.names:
            published = self._published.get(name, Published(None, None, "not checked yet"))
            loaded, use = self._current.get(name), self._use(name)
            error = self._errors.get(name, "") if loaded else (self._errors.get(name) or published.error)
            rows.append({"name": name, "version": loaded.version if loaded else (published.version or ""),
                         "path": str(loaded.path if loaded else (published.path or "")),
                         "base_model": loaded.base_model if loaded else published.base_model,
                         "loaded": loaded is not None, "error": error, **dataclasses.asdict(use)})
        return rows

"""Which LoRA adapter versions the service serves: the event loop's side of adapter management.

The catalog reads the published versions (MODELS_DIR/adapters/<name>/CURRENT), decides what to load and when an
old version can go, and hands out leases: a request keeps the version it started with while a newer one is loaded
next to it, and a replaced version is unloaded once no request holds it. Only the engine changes the model; the
catalog tells it what to do (`load_adapter`, `unload_adapter`), as vLLM's scheduler tells its worker-side LoRA
manager. Everything here runs on the event loop, so its bookkeeping needs no lock.
"""
import asyncio
import dataclasses
import logging
import os
import pathlib
from typing import Protocol

from services.common import adapters
from services.llm.request import PEFT_BASE

log = logging.getLogger("textgen.llm")


class AdapterLoader(Protocol):
    """What the catalog asks of the engine; both run on the engine's thread, between batches."""

    async def load_adapter(self, path: pathlib.Path, peft_name: str) -> None: ...

    async def unload_adapter(self, peft_name: str) -> None: ...


@dataclasses.dataclass(eq=False)
class LoadedVersion:
    name: str
    version: str
    path: pathlib.Path
    peft_name: str
    base_model: str
    leases: int = 0
    retired: bool = False


@dataclasses.dataclass
class Lease:
    """What one request generates with: an adapter version (or the base model), held until the request ends."""
    name: str
    version: str
    peft_name: str
    loaded: LoadedVersion | None = None


@dataclasses.dataclass
class Published:
    version: str | None
    path: pathlib.Path | None
    error: str = ""
    base_model: str = ""  # the base it was trained on, as its record says


def _pointer_signature(models_dir: pathlib.Path, name: str):
    try:
        stat = os.stat(adapters.adapter_dir(models_dir, name) / adapters.POINTER)
    except OSError:
        return None
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


def published_version(models_dir: pathlib.Path, name: str, base_fingerprint: str | None) -> Published:
    """The current version of `name`, checked to be a safetensors adapter inside MODELS_DIR/adapters that was trained
    on the base model with `base_fingerprint`."""
    try:
        version = adapters.current_version(models_dir, name)
    except adapters.AdapterPathError as error:
        return Published(None, None, str(error))
    if version is None:
        return Published(None, None, "no version published")
    path = adapters.current_path(models_dir, name)
    if path is None:
        return Published(version, None, f"version {version} has no {adapters.WEIGHTS}")
    root = adapters.adapters_root(models_dir).resolve()
    if not path.resolve().is_relative_to(root):
        return Published(version, None, f"{path} resolves outside {root}; refused")
    record = adapters.read_base_record(path)
    if record is None:
        return Published(version, None, f"version {version} does not record the base model it was trained on "
                                         f"({adapters.BASE_RECORD}); refused: train it again")
    trained_on = str(record.get("name", "?"))
    if record["fingerprint"] != base_fingerprint:
        return Published(version, None, f"version {version} was trained on base model {trained_on} (config "
                                         f"{record['fingerprint']}), not on the one served here (config "
                                         f"{base_fingerprint}); refused", trained_on)
    return Published(version, path, base_model=trained_on)


class AdapterCatalog:
    def __init__(self, models_dir: pathlib.Path, loader: AdapterLoader, names=adapters.ADAPTER_NAMES) -> None:
        self.models_dir = pathlib.Path(models_dir)
        self.loader = loader
        self.names = tuple(names)
        self._current: dict[str, LoadedVersion] = {}
        self._errors: dict[str, str] = {}
        self._published: dict[str, Published] = {}
        self._signatures: dict[str, object] = {}
        self._counter = 0
        self._refreshing = asyncio.Lock()
        self.base_fingerprint: str | None = None  # the served base model's, once it is loaded (`open`)

    async def open(self, base_fingerprint: str) -> None:
        """Starts serving once the base model is loaded: the versions trained on it are loaded."""
        self.base_fingerprint = base_fingerprint
        await self.refresh()

    def changed(self) -> bool:
        """A few stat calls: whether any CURRENT pointer moved since the last refresh."""
        return any(_pointer_signature(self.models_dir, n) != self._signatures.get(n) for n in self.names)

    async def refresh_if_changed(self) -> None:
        """What a request calls first: a newly published version is served from the next request on."""
        if self.changed():
            await self.refresh()

    async def refresh(self) -> None:
        """Loads every newly published version and retires the versions they replace. A version that cannot be
        served (refused, or failing to load) leaves the previous one serving, with the reason in the status; only
        a withdrawn one (no version published) takes the adapter out of service."""
        async with self._refreshing:
            for name in self.names:
                self._signatures[name] = _pointer_signature(self.models_dir, name)
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
                        self._retire(self._current.pop(name))
                    self._errors[name] = published.error
                    continue
                await self._load(name, published, current)

    async def _load(self, name: str, published: Published, current: LoadedVersion | None) -> None:
        self._counter += 1
        peft_name = f"{name}_{self._counter}"
        try:
            await self.loader.load_adapter(published.path, peft_name)
        except Exception as error:  # a broken or mismatched adapter must not take the service down
            log.warning("adapter not loaded", extra={"adapter": name, "version": published.version,
                                                     "error": str(error)[:300]})
            still = f"; still serving version {current.version}" if current is not None else ""
            self._errors[name] = f"version {published.version} failed to load: {str(error)[:300]}{still}"
            return
        self._current[name] = LoadedVersion(name, published.version, published.path, peft_name, published.base_model)
        self._errors.pop(name, None)
        log.info("adapter loaded", extra={"adapter": name, "version": published.version, "path": str(published.path)})
        if current is not None:
            self._retire(current)

    def _retire(self, version: LoadedVersion) -> None:
        version.retired = True
        if version.leases == 0:
            asyncio.get_running_loop().create_task(self._unload(version))

    async def _unload(self, version: LoadedVersion) -> None:
        await self.loader.unload_adapter(version.peft_name)
        log.info("old adapter version unloaded", extra={"adapter": version.name, "version": version.version})

    def acquire(self, name: str) -> Lease | None:
        if name == adapters.BASE:
            return Lease(adapters.BASE, "", PEFT_BASE)
        loaded = self._current.get(name)
        if loaded is None:
            return None
        loaded.leases += 1
        return Lease(name, loaded.version, loaded.peft_name, loaded)

    def release(self, lease: Lease) -> None:
        version = lease.loaded
        if version is None:
            return
        version.leases -= 1
        if version.retired and version.leases == 0:
            asyncio.get_running_loop().create_task(self._unload(version))

    def why_missing(self, name: str) -> str:
        return self._errors.get(name) or self._published.get(name, Published(None, None, "not loaded")).error

    def status(self) -> list[dict]:
        rows = []
        for name in self.names:
            published = self._published.get(name, Published(None, None, "not checked yet"))
            loaded = self._current.get(name)
            rows.append({"name": name, "version": loaded.version if loaded else (published.version or ""),
                         "path": str(loaded.path if loaded else (published.path or "")),
                         "base_model": loaded.base_model if loaded else published.base_model,
                         "loaded": loaded is not None,
                         "error": self._errors.get(name, "") if loaded else (self._errors.get(name)
                                                                              or published.error)})
        return rows

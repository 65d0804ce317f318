"""The LoRA adapters loaded onto the one base model, version by version.

Each published version is loaded under its own peft name ("sft_3"), so a request keeps the version it started
with while a newer one is loaded next to it; an old version is deleted once no request holds it. Everything that
touches the model runs on the engine thread; the bookkeeping here is shared with the event loop under a lock."""
import dataclasses
import logging
import os
import pathlib
import threading

from services.common import adapters

log = logging.getLogger("textgen.llm")

BASE = "base"
PEFT_BASE = "__base__"  # peft's name for "no adapter" in a mixed batch


@dataclasses.dataclass
class LoadedAdapter:
    name: str
    version: str
    path: pathlib.Path
    peft_name: str
    leases: int = 0
    retired: bool = False


@dataclasses.dataclass
class Lease:
    """What one request generates with: an adapter version (or the base model) held until the request ends."""
    name: str
    version: str
    peft_name: str
    loaded: LoadedAdapter | None = None


@dataclasses.dataclass
class Published:
    version: str | None
    path: pathlib.Path | None
    error: str = ""


def _pointer_signature(models_dir: pathlib.Path, name: str):
    try:
        stat = os.stat(adapters.adapter_dir(models_dir, name) / adapters.POINTER)
    except OSError:
        return None
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


def _published(models_dir: pathlib.Path, name: str) -> Published:
    """The current version of `name`, checked to be a safetensors adapter inside MODELS_DIR/adapters."""
    try:
        version = adapters.current_version(models_dir, name)
    except adapters.AdapterPathError as error:
        return Published(None, None, str(error))
    if version is None:
        return Published(None, None, "no version published")
    path = adapters.current_path(models_dir, name)
    if path is None:
        return Published(version, None, f"version {version} has no adapter_model.safetensors")
    root = adapters.adapters_root(models_dir).resolve()
    if not path.resolve().is_relative_to(root):
        return Published(version, None, f"{path} resolves outside {root}; refused")
    return Published(version, path)


class AdapterRegistry:
    def __init__(self, models_dir: pathlib.Path, names=adapters.ADAPTER_NAMES) -> None:
        self.models_dir = pathlib.Path(models_dir)
        self.names = tuple(names)
        self._lock = threading.Lock()
        self._current: dict[str, LoadedAdapter] = {}
        self._all: dict[str, LoadedAdapter] = {}  # by peft name, retired ones included until deleted
        self._errors: dict[str, str] = {}
        self._published: dict[str, Published] = {}
        self._signatures: dict[str, object] = {}
        self._counter = 0

    # --- event loop side -------------------------------------------------------------------------------------
    def changed(self) -> bool:
        """A few stat calls: whether any CURRENT pointer moved since the last reload."""
        return any(_pointer_signature(self.models_dir, n) != self._signatures.get(n) for n in self.names)

    def acquire(self, name: str) -> Lease | None:
        if name == BASE:
            return Lease(BASE, "", PEFT_BASE)
        with self._lock:
            loaded = self._current.get(name)
            if loaded is None:
                return None
            loaded.leases += 1
            return Lease(name, loaded.version, loaded.peft_name, loaded)

    def release(self, lease: Lease) -> None:
        if lease.loaded is not None:
            with self._lock:
                lease.loaded.leases -= 1

    def why_missing(self, name: str) -> str:
        with self._lock:
            return self._errors.get(name) or self._published.get(name, Published(None, None, "not loaded")).error

    def status(self) -> list[dict]:
        with self._lock:
            rows = []
            for name in self.names:
                published = self._published.get(name, Published(None, None, "not checked yet"))
                loaded = self._current.get(name)
                rows.append({"name": name, "version": loaded.version if loaded else (published.version or ""),
                             "path": str(loaded.path if loaded else (published.path or "")),
                             "loaded": loaded is not None,
                             "error": self._errors.get(name, "") if loaded else (self._errors.get(name)
                                                                                  or published.error)})
            return rows

    # --- engine thread side ----------------------------------------------------------------------------------
    def reload(self, holder) -> None:
        """Loads every newly published version onto `holder.model` and retires the versions they replace."""
        for name in self.names:
            self._signatures[name] = _pointer_signature(self.models_dir, name)
            published = _published(self.models_dir, name)
            with self._lock:
                self._published[name] = published
                current = self._current.get(name)
            if current is not None and published.version == current.version and published.path is not None:
                continue
            if published.path is None:
                self._retire(name, published.error)
                continue
            self._counter += 1
            peft_name = f"{name}_{self._counter}"
            try:
                holder.add_adapter(published.path, peft_name)
            except Exception as error:  # a broken or mismatched adapter must not take the service down
                log.warning("adapter not loaded", extra={"adapter": name, "version": published.version,
                                                         "error": str(error)[:300]})
                still = f"; still serving version {current.version}" if current is not None else ""
                with self._lock:
                    self._errors[name] = f"version {published.version} failed to load: {str(error)[:300]}{still}"
                continue
            loaded = LoadedAdapter(name, published.version, published.path, peft_name)
            with self._lock:
                self._all[peft_name] = loaded
                self._current[name] = loaded
                self._errors.pop(name, None)
                if current is not None:
                    current.retired = True
            log.info("adapter loaded", extra={"adapter": name, "version": loaded.version, "path": str(loaded.path)})
        self.collect(holder)

    def _retire(self, name: str, error: str) -> None:
        with self._lock:
            current = self._current.pop(name, None)
            if current is not None:
                current.retired = True
            self._errors[name] = error

    def collect(self, holder) -> None:
        """Deletes retired versions that no request holds any more (peft needs one adapter left to stay valid)."""
        with self._lock:
            idle = [a for a in self._all.values() if a.retired and a.leases == 0]
        for adapter in idle:
            if len(self._all) <= 1:
                return
            holder.delete_adapter(adapter.peft_name)
            with self._lock:
                del self._all[adapter.peft_name]
            log.info("old adapter version unloaded", extra={"adapter": adapter.name, "version": adapter.version})

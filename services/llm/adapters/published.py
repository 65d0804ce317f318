"""What is published under MODELS_DIR/adapters, as the llm service reads it: the adapters' names, and the current
version of each, checked to be a safetensors adapter inside MODELS_DIR/adapters trained on the base model served
(services/common/adapters.py writes them), with whose it is and whether it is a chat model only."""
import dataclasses
import os
import pathlib

from services.common import adapters
from services.common.callers import sees


def adapter_names(models_dir: pathlib.Path, always: tuple[str, ...]) -> tuple[str, ...]:
    """`always` (listed even before anything is published), then every other adapter folder, sorted."""
    return (*always, *(name for name in adapters.folder_names(models_dir) if name not in always))


def signature(models_dir: pathlib.Path, names: tuple[str, ...]) -> tuple:
    """A few stat calls that change whenever an adapter folder comes or goes (the adapters folder's own stat) or the
    CURRENT pointer of one of `names` moves."""
    def stat(path: pathlib.Path):
        try:
            found = os.stat(path)
        except OSError:
            return None
        return found.st_ino, found.st_mtime_ns, found.st_size

    root = adapters.adapters_root(models_dir)
    return (stat(root), *(stat(root / name / adapters.POINTER) for name in names))


@dataclasses.dataclass
class Published:
    version: str | None
    path: pathlib.Path | None
    error: str = ""
    base_model: str = ""  # the base it was trained on, as its record says
    owner: str = ""  # the API key's name whose it is ('' for everyone's: services/common/callers.py)
    chat: bool = False  # trained on chat examples: served through the chat template only, never in the QA form

    def seen_by(self, who: str) -> bool:
        """Whether the caller `who` may see and use it: another key's fine-tuned model is as if it did not exist."""
        return sees(who, self.owner)


def published_version(models_dir: pathlib.Path, name: str, base_fingerprint: str | None) -> Published:
    """The current version of `name`, checked to be a safetensors adapter inside MODELS_DIR/adapters that was trained
    on the base model with `base_fingerprint`; whose it is, even when it cannot be served (its reason is then its
    owner's to read)."""
    published = _checked(models_dir, name, base_fingerprint)
    if published.version is None:
        return published
    owner, chat = adapters.read_serving_record(adapters.version_dir(models_dir, name, published.version))
    return dataclasses.replace(published, owner=owner, chat=chat)


def _checked(models_dir: pathlib.Path, name: str, base_fingerprint: str | None) -> Published:
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

"""Where LoRA adapters live under MODELS_DIR, and how a new version is published atomically.

    MODELS_DIR/adapters/<name>/<version>/adapter_model.safetensors, adapter_config.json, ...
    MODELS_DIR/adapters/<name>/<version>/base_model.json   the base it was trained on: name and config fingerprint
    MODELS_DIR/adapters/<name>/<version>/serving.json      whose it is, and whether it is a chat model only
    MODELS_DIR/adapters/<name>/CURRENT          the current version's folder name, replaced with os.replace

Versions are UTC timestamps (YYYYmmddTHHMMSSffffffZ), so they sort in publication order.
"""
import datetime
import json
import os
import pathlib
import re
import shutil
import tempfile

ADAPTER_NAMES = ("sft", "rl")  # in training order: RL continues the SFT adapter
BASE = "base"  # what a request names to get no adapter
POINTER = "CURRENT"
# A version's weights, named as peft saves them: a version without them is neither published nor served.
WEIGHTS = "adapter_model.safetensors"
BASE_RECORD = "base_model.json"
EVALUATION = "eval.json"  # in each published version: its evaluation on SQuAD's dev questions
SERVING_RECORD = "serving.json"
UNREADABLE_OWNER = "!unreadable"  # no API key's name can be this
_VALID_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


# What a training job may name the adapter it publishes; "base" means no adapter, so it is no adapter's name.
NEW_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
NEW_NAME_RULE = "lower-case letters, digits, '-' and '_', at most 64 characters, not 'base'"


def is_valid_name(name: str) -> bool:
    """Whether `name` can be an adapter folder's (and so a request's adapter)."""
    return bool(_VALID_NAME.match(name)) and ".." not in name and name != BASE


def is_new_name(name: str) -> bool:
    """Whether a training job may publish under `name` (NEW_NAME_RULE)."""
    return bool(NEW_NAME.match(name)) and name != BASE


class AdapterPathError(ValueError):
    """An adapter name or version that would leave MODELS_DIR/adapters."""


def _checked(part: str, what: str) -> str:
    if not _VALID_NAME.match(part) or ".." in part:
        raise AdapterPathError(f"invalid adapter {what} {part!r}: letters, digits, '_', '-', '.' only, no '..'")
    return part


def adapters_root(models_dir: pathlib.Path) -> pathlib.Path:
    return pathlib.Path(models_dir) / "adapters"


def adapter_dir(models_dir: pathlib.Path, name: str) -> pathlib.Path:
    return adapters_root(models_dir) / _checked(name, "name")


def version_dir(models_dir: pathlib.Path, name: str, version: str) -> pathlib.Path:
    """The folder of one published version of the `name` adapter."""
    return adapter_dir(models_dir, name) / _checked(version, "version")


def current_version(models_dir: pathlib.Path, name: str) -> str | None:
    try:
        version = (adapter_dir(models_dir, name) / POINTER).read_text().strip()
    except FileNotFoundError:
        return None
    return _checked(version, "version") if version else None


def current_path(models_dir: pathlib.Path, name: str) -> pathlib.Path | None:
    """The folder of the current version, or None when none is published (or its files are missing)."""
    version = current_version(models_dir, name)
    if version is None:
        return None
    path = adapter_dir(models_dir, name) / version
    return path if (path / WEIGHTS).is_file() else None


def write_base_record(folder: pathlib.Path, base_name: str, fingerprint: str) -> None:
    """Records in an adapter's folder which base it was trained on; the llm service refuses it on any other."""
    (pathlib.Path(folder) / BASE_RECORD).write_text(json.dumps({"name": base_name, "fingerprint": fingerprint},
                                                               indent=2) + "\n")


def read_base_record(folder: pathlib.Path) -> dict | None:
    """{"name", "fingerprint"} of the base an adapter was trained on; None when it has no readable record."""
    try:
        record = json.loads((pathlib.Path(folder) / BASE_RECORD).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("fingerprint"), str) else None


def write_serving_record(folder: pathlib.Path, owner: str, chat: bool) -> None:
    """Records how an adapter is served: `owner`, the API key's name whose it is ('' for everyone's:
    services/common/callers.py), and `chat`, whether it learnt chat (served through the chat template only, never
    asked in the QA form)."""
    (pathlib.Path(folder) / SERVING_RECORD).write_text(json.dumps({"owner": owner, "chat": chat}) + "\n")


def read_serving_record(folder: pathlib.Path) -> tuple[str, bool]:
    """(owner, chat); ("", False) for a version without a record (published before there were owners). An
    unreadable record makes the adapter no caller's: it must not become everyone's."""
    path = pathlib.Path(folder) / SERVING_RECORD
    if not path.exists():
        return "", False
    try:
        record = json.loads(path.read_text())
        return str(record["owner"]), bool(record["chat"])
    except (OSError, ValueError, KeyError, TypeError):
        return UNREADABLE_OWNER, True


VERSION_FORMAT = "%Y%m%dT%H%M%S%fZ"


def new_version() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime(VERSION_FORMAT)


def published_at(version: str) -> datetime.datetime:
    """When a version was published: its name says so."""
    return datetime.datetime.strptime(version, VERSION_FORMAT).replace(tzinfo=datetime.timezone.utc)


def staging_dir(models_dir: pathlib.Path, name: str) -> pathlib.Path:
    """A fresh folder on the same file system as the adapters, to write a new version into before `publish`."""
    root = adapter_dir(models_dir, name)
    try:
        root.mkdir(parents=True, exist_ok=True)
        return pathlib.Path(tempfile.mkdtemp(prefix=".staging-", dir=root))
    except OSError as error:
        raise OSError(f"cannot write a new {name} adapter under {root} ({error.strerror or error}): MODELS_DIR must "
                      "be a writable folder with free space; nothing was published") from error


def publish(models_dir: pathlib.Path, name: str, staged: pathlib.Path) -> str:
    """Moves a fully written `staged` folder into place as a new version, then points CURRENT at it.

    Both steps are renames, so a reader sees either the old version or the new one, never a half-written one."""
    if not (staged / WEIGHTS).is_file():
        raise FileNotFoundError(f"{staged} holds no {WEIGHTS}; nothing published")
    version = new_version()
    os.replace(staged, adapter_dir(models_dir, name) / version)
    point_current(models_dir, name, version)
    return version


def point_current(models_dir: pathlib.Path, name: str, version: str) -> None:
    """Makes `version` the one that serves: CURRENT replaced by a rename, so readers see the old or the new one."""
    root = adapter_dir(models_dir, name)
    pointer_tmp = root / f".{POINTER}.{_checked(version, 'version')}.tmp"
    pointer_tmp.write_text(version + "\n")
    os.replace(pointer_tmp, root / POINTER)


def folder_names(models_dir: pathlib.Path) -> list[str]:
    """The names of the adapter folders under MODELS_DIR/adapters, sorted (published or not yet)."""
    try:
        entries = list(os.scandir(adapters_root(models_dir)))
    except OSError:
        return []
    return sorted(entry.name for entry in entries if entry.is_dir() and is_valid_name(entry.name))


def versions(models_dir: pathlib.Path, name: str) -> list[str]:
    """The published versions of `name` whose weights are there, newest first."""
    try:
        entries = list(os.scandir(adapter_dir(models_dir, name)))
    except FileNotFoundError:
        return []
    return sorted((entry.name for entry in entries if entry.is_dir() and _is_version(entry.name)
                   and (pathlib.Path(entry.path) / WEIGHTS).is_file()), reverse=True)


def _is_version(text: str) -> bool:
    try:
        published_at(text)
    except ValueError:
        return False
    return True


def remove_version(models_dir: pathlib.Path, name: str, version: str) -> None:
    shutil.rmtree(version_dir(models_dir, name, version))


def remove_adapter(models_dir: pathlib.Path, name: str) -> None:
    """The whole adapter: its CURRENT pointer first (it stops serving at once), then its folder."""
    folder = adapter_dir(models_dir, name)
    (folder / POINTER).unlink(missing_ok=True)
    shutil.rmtree(folder)


def prune(models_dir: pathlib.Path, name: str, keep: int) -> list[str]:
    """Removes all but the `keep` newest versions of `name` (never the one serving); returns those removed."""
    serving = current_version(models_dir, name)
    removed = [version for version in versions(models_dir, name)[keep:] if version != serving]
    for version in removed:
        remove_version(models_dir, name, version)
    return removed


def discard(staged: pathlib.Path) -> None:
    shutil.rmtree(staged, ignore_errors=True)

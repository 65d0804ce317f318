"""Job records in SQLite under MODELS_DIR, shared by the trainer server and its training processes.

The server creates, starts, cancels and lists jobs; the training process writes its own progress and, under one
write transaction, checks that its job is still running and publishes — so a cancel (which takes the same lock)
either lands before the publish and nothing is published, or after it and finds the job already succeeded.

One rule for the event loop: it never calls SQLite itself (a write may wait up to 30 s for the training process's
lock). The server and the runner hold a `LoopJobStore`, whose every call runs in a worker thread.
"""
import asyncio
import contextlib
import dataclasses
import json
import pathlib
import sqlite3
import time
import uuid

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = "queued", "running", "succeeded", "failed", "cancelled"
TERMINAL = (SUCCEEDED, FAILED, CANCELLED)


def trainer_dir(models_dir: pathlib.Path) -> pathlib.Path:
    """MODELS_DIR/trainer: the trainer's own files (the job store, each job's log), beside the adapters it publishes."""
    return pathlib.Path(models_dir) / "trainer"


_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    params TEXT NOT NULL,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    step INTEGER NOT NULL DEFAULT 0,
    total_steps INTEGER NOT NULL DEFAULT 0,
    loss REAL,
    reward REAL,
    eta_seconds REAL,
    message TEXT NOT NULL DEFAULT '',
    adapter_version TEXT NOT NULL DEFAULT '',
    error TEXT NOT NULL DEFAULT '',
    staging TEXT,
    pid INTEGER,
    device TEXT NOT NULL DEFAULT '',
    base_model TEXT NOT NULL DEFAULT ''
)
"""
# Columns added after the first release, for stores created before them: (name, definition).
_ADDED_COLUMNS = [("device", "TEXT NOT NULL DEFAULT ''"), ("base_model", "TEXT NOT NULL DEFAULT ''")]


@dataclasses.dataclass(frozen=True)
class JobRecord:
    id: str
    kind: str
    status: str
    params: dict
    created_at: float
    started_at: float | None
    finished_at: float | None
    step: int
    total_steps: int
    loss: float | None
    reward: float | None
    eta_seconds: float | None
    message: str
    adapter_version: str
    error: str
    staging: str | None
    pid: int | None
    device: str  # where it trained, e.g. "cuda:0 bfloat16"; set when it starts
    base_model: str  # the base it trained on, e.g. "SmolLM2-135M-Instruct (embedded)"; set when it starts

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL

    @property
    def adapter(self) -> str:
        """The adapter it publishes a version of (records from before named adapters: its kind's)."""
        return self.params.get("adapter", self.kind)


def _record(row: sqlite3.Row) -> JobRecord:
    values = dict(row)
    values.pop("seq")
    values["params"] = json.loads(values["params"])
    return JobRecord(**values)


class JobStore:
    def __init__(self, path: pathlib.Path) -> None:
        self.path = pathlib.Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")  # readers never wait for the training process's writes
            db.execute(_SCHEMA)
            present = {row[1] for row in db.execute("PRAGMA table_info(jobs)")}
            for name, definition in _ADDED_COLUMNS:
                if name not in present:  # an older store: its records stay, with the column's default
                    db.execute(f"ALTER TABLE jobs ADD COLUMN {name} {definition}")
        finally:
            db.close()

    @classmethod
    def under(cls, models_dir: pathlib.Path) -> "JobStore":
        return cls(trainer_dir(models_dir) / "jobs.sqlite3")

    @contextlib.contextmanager
    def _connect(self, immediate: bool = False):
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.row_factory = sqlite3.Row
        try:
            db.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
            yield db
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        finally:
            db.close()

    def _get(self, db, job_id: str) -> JobRecord | None:
        row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _record(row) if row else None

    def get(self, job_id: str) -> JobRecord | None:
        with self._connect() as db:
            return self._get(db, job_id)

    def all(self) -> list[JobRecord]:
        """Newest first."""
        with self._connect() as db:
            return [_record(row) for row in db.execute("SELECT * FROM jobs ORDER BY seq DESC")]

    def create_if_room(self, kind: str, params: dict, max_queued: int) -> JobRecord | None:
        """A new queued job, or None when `max_queued` jobs are already waiting."""
        with self._connect(immediate=True) as db:
            waiting = db.execute("SELECT COUNT(*) FROM jobs WHERE status = ?", (QUEUED,)).fetchone()[0]
            if waiting >= max_queued:
                return None
            job_id = uuid.uuid4().hex[:16]
            db.execute("INSERT INTO jobs (id, kind, status, params, created_at, message) VALUES (?, ?, ?, ?, ?, ?)",
                       (job_id, kind, QUEUED, json.dumps(params), time.time(), "waiting for earlier jobs"))
            return self._get(db, job_id)

    def next_queued(self) -> JobRecord | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM jobs WHERE status = ? ORDER BY seq LIMIT 1", (QUEUED,)).fetchone()
            return _record(row) if row else None

    def start(self, job_id: str) -> bool:
        """queued → running; False when the job was cancelled meanwhile."""
        with self._connect(immediate=True) as db:
            changed = db.execute("UPDATE jobs SET status = ?, started_at = ?, message = ? WHERE id = ? AND status = ?",
                                 (RUNNING, time.time(), "starting the training process", job_id, QUEUED)).rowcount
            return changed == 1

    def set_pid(self, job_id: str, pid: int) -> None:
        with self._connect(immediate=True) as db:
            db.execute("UPDATE jobs SET pid = ? WHERE id = ?", (pid, job_id))

    def set_trained_on(self, job_id: str, device: str, base_model: str) -> None:
        with self._connect(immediate=True) as db:
            db.execute("UPDATE jobs SET device = ?, base_model = ? WHERE id = ?", (device, base_model, job_id))

    def set_staging(self, job_id: str, staging: pathlib.Path) -> None:
        with self._connect(immediate=True) as db:
            db.execute("UPDATE jobs SET staging = ? WHERE id = ?", (str(staging), job_id))

    def update_progress(self, job_id: str, step: int, total_steps: int, loss: float | None, reward: float | None,
                        eta_seconds: float | None, message: str) -> None:
        with self._connect(immediate=True) as db:
            db.execute("UPDATE jobs SET step = ?, total_steps = ?, loss = ?, reward = ?, eta_seconds = ?, message = ? "
                       "WHERE id = ? AND status = ?",
                       (step, total_steps, loss, reward, eta_seconds, message, job_id, RUNNING))

    def publish_if_running(self, job_id: str, publish) -> str | None:
        """Runs `publish()` and marks the job succeeded with the version it returns, both while holding the write
        lock, only when the job is still running (not cancelled, not failed by a restart). None otherwise."""
        with self._connect(immediate=True) as db:
            job = self._get(db, job_id)
            if job is None or job.status != RUNNING:
                return None
            version = publish()
            db.execute("UPDATE jobs SET status = ?, adapter_version = ?, finished_at = ?, eta_seconds = 0, "
                       "message = ? WHERE id = ?",
                       (SUCCEEDED, version, time.time(), f"published {job.kind} adapter version {version}", job_id))
            return version

    def finish(self, job_id: str, status: str, error: str = "", only_if: tuple[str, ...] = (QUEUED, RUNNING)) \
            -> JobRecord | None:
        """Moves a job still in one of `only_if` to a terminal `status`; returns the job as it is afterwards."""
        with self._connect(immediate=True) as db:
            job = self._get(db, job_id)
            if job is None:
                return None
            if job.status in only_if:
                message = error or {CANCELLED: "cancelled"}.get(status, status)
                db.execute("UPDATE jobs SET status = ?, error = ?, finished_at = ?, eta_seconds = NULL, message = ? "
                           "WHERE id = ?", (status, error, time.time(), message, job_id))
            return self._get(db, job_id)

    def fail_interrupted(self, reason: str) -> list[JobRecord]:
        """At start-up: jobs left running by a trainer that died are failed with `reason`; returns them."""
        with self._connect(immediate=True) as db:
            stale = [_record(row) for row in db.execute("SELECT * FROM jobs WHERE status = ?", (RUNNING,))]
            db.execute("UPDATE jobs SET status = ?, error = ?, finished_at = ?, eta_seconds = NULL, message = ? "
                       "WHERE status = ?", (FAILED, reason, time.time(), reason, RUNNING))
            return stale


class LoopJobStore:
    """The JobStore for code on the event loop: the same calls, awaited, each run in a worker thread."""

    def __init__(self, store: JobStore) -> None:
        self.store = store

    async def get(self, job_id: str) -> JobRecord | None:
        return await asyncio.to_thread(self.store.get, job_id)

    async def all(self) -> list[JobRecord]:
        return await asyncio.to_thread(self.store.all)

    async def create_if_room(self, kind: str, params: dict, max_queued: int) -> JobRecord | None:
        return await asyncio.to_thread(self.store.create_if_room, kind, params, max_queued)

    async def next_queued(self) -> JobRecord | None:
        return await asyncio.to_thread(self.store.next_queued)

    async def start(self, job_id: str) -> bool:
        return await asyncio.to_thread(self.store.start, job_id)

    async def set_pid(self, job_id: str, pid: int) -> None:
        await asyncio.to_thread(self.store.set_pid, job_id, pid)

    async def finish(self, job_id: str, status: str, error: str = "",
                     only_if: tuple[str, ...] = (QUEUED, RUNNING)) -> JobRecord | None:
        return await asyncio.to_thread(self.store.finish, job_id, status, error, only_if)

    async def fail_interrupted(self, reason: str) -> list[JobRecord]:
        return await asyncio.to_thread(self.store.fail_interrupted, reason)

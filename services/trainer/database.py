"""The trainer's SQLite database, MODELS_DIR/trainer/jobs.sqlite3: the jobs, their events and the uploaded files'
records, in one file, so that one transaction can hold a job and the files it names together (a file a job still
needs is not deleted; a job names only files that exist). The trainer server and its training processes share it.

One rule for the event loop: it never calls SQLite itself (a write may wait up to 30 s for a training process's
lock). Code on the event loop holds a store wrapped in `OffLoop`, whose every call runs in a worker thread.
"""
import asyncio
import contextlib
import pathlib
import sqlite3

_TABLES = [
    """CREATE TABLE IF NOT EXISTS jobs (
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
    )""",
    """CREATE TABLE IF NOT EXISTS job_events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        job_id TEXT NOT NULL,
        created_at REAL NOT NULL,
        level TEXT NOT NULL,
        type TEXT NOT NULL,
        message TEXT NOT NULL,
        data TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS job_events_by_job ON job_events (job_id, seq)",
    """CREATE TABLE IF NOT EXISTS files (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT UNIQUE NOT NULL,
        owner TEXT NOT NULL,
        filename TEXT NOT NULL,
        purpose TEXT NOT NULL,
        bytes INTEGER NOT NULL,
        created_at REAL NOT NULL,
        examples INTEGER NOT NULL DEFAULT 0,
        job_id TEXT
    )""",
]
# Columns added to a table after its first release, for databases created before them: (table, name, definition).
_ADDED_COLUMNS = [
    ("jobs", "device", "TEXT NOT NULL DEFAULT ''"),
    ("jobs", "base_model", "TEXT NOT NULL DEFAULT ''"),
    ("jobs", "owner", "TEXT NOT NULL DEFAULT ''"),  # the API key's name that created it; '' without keys
    ("jobs", "error_code", "TEXT NOT NULL DEFAULT ''"),  # OpenAI's error code of a fine-tuning job
    ("jobs", "trained_tokens", "INTEGER"),
]


def trainer_dir(models_dir: pathlib.Path) -> pathlib.Path:
    """MODELS_DIR/trainer: the trainer's own files (this database, the uploaded files, each job's log), beside the
    adapters it publishes."""
    return pathlib.Path(models_dir) / "trainer"


class Database:
    def __init__(self, path: pathlib.Path) -> None:
        self.path = pathlib.Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")  # readers never wait for a training process's writes
            for statement in _TABLES:
                db.execute(statement)
            for table, name, definition in _ADDED_COLUMNS:
                present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
                if name not in present:  # an older database: its records stay, with the column's default
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {definition}")
        finally:
            db.close()

    @classmethod
    def under(cls, models_dir: pathlib.Path) -> "Database":
        return cls(trainer_dir(models_dir) / "jobs.sqlite3")

    @contextlib.contextmanager
    def transaction(self, immediate: bool = False):
        """A connection inside one transaction, committed when the block ends and rolled back when it raises;
        `immediate` takes the write lock at once (a read that decides a write must not see a stale database)."""
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


class OffLoop:
    """A store for code on the event loop: the same calls, awaited, each run in a worker thread."""

    def __init__(self, store) -> None:
        self.store = store

    def __getattr__(self, name: str):
        method = getattr(self.store, name)

        async def call(*args, **kwargs):
            return await asyncio.to_thread(method, *args, **kwargs)

        return call

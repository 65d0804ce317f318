"""Job records and their events in the trainer's database (services/trainer/database.py), shared by the trainer
server and its training processes.

The server creates, validates, starts, cancels and lists jobs; the training process writes its own progress and,
under one write transaction, checks that its job is still running and publishes, so a cancel (which takes the same
lock) either lands before the publish and nothing is published, or after it and finds the job already succeeded.
Every change of status writes an event in the same transaction, and so does every logged training step.
"""
import dataclasses
import json
import pathlib
import sqlite3
import time
import uuid
from collections.abc import Callable

from services.trainer.database import Database
from services.trainer.jobs.events import JobEvent, add_event, read_events

VALIDATING, QUEUED, RUNNING = "validating_files", "queued", "running"
SUCCEEDED, FAILED, CANCELLED = "succeeded", "failed", "cancelled"
WAITING = (VALIDATING, QUEUED)  # what TRAINER_MAX_QUEUED bounds
TERMINAL = (SUCCEEDED, FAILED, CANCELLED)
FINE_TUNE = "fine_tune"  # the kind of a job of OpenAI's fine-tuning API


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
    owner: str  # the API key's name that created it ('' without keys, and for the seed's jobs)
    error_code: str  # OpenAI's code for a fine-tuning job's error, e.g. invalid_training_file
    trained_tokens: int | None

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


def new_job_id(kind: str) -> str:
    return f"ftjob-{uuid.uuid4().hex[:20]}" if kind == FINE_TUNE else uuid.uuid4().hex[:16]


class JobStore:
    def __init__(self, database: Database) -> None:
        self.database = database

    @classmethod
    def under(cls, models_dir: pathlib.Path) -> "JobStore":
        return cls(Database.under(models_dir))

    def _get(self, db, job_id: str) -> JobRecord | None:
        row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _record(row) if row else None

    def get(self, job_id: str) -> JobRecord | None:
        with self.database.transaction() as db:
            return self._get(db, job_id)

    def all(self) -> list[JobRecord]:
        """Newest first."""
        with self.database.transaction() as db:
            return [_record(row) for row in db.execute("SELECT * FROM jobs ORDER BY seq DESC")]

    def page(self, kind: str, owners: tuple[str, ...], after: str, limit: int) -> tuple[list[JobRecord], bool]:
        """Up to `limit` jobs of `kind` owned by one of `owners`, newest first, created before the job `after`
        (none: from the newest); and whether more follow."""
        marks = ",".join("?" * len(owners))
        with self.database.transaction() as db:
            rows = db.execute(f"SELECT * FROM jobs WHERE kind = ? AND owner IN ({marks}) AND seq < COALESCE("
                              "(SELECT seq FROM jobs WHERE id = ?), 1e18) ORDER BY seq DESC LIMIT ?",
                              (kind, *owners, after, limit + 1)).fetchall()
        return [_record(row) for row in rows[:limit]], len(rows) > limit

    def create_if_room(self, kind: str, params: dict, max_queued: int, owner: str = "", status: str = QUEUED,
                       job_id: str | None = None) -> JobRecord | None:
        """A new job (queued, or validating its files first; `job_id`, or a new id), or None when `max_queued` jobs
        are already waiting."""
        with self.database.transaction(immediate=True) as db:
            marks = ",".join("?" * len(WAITING))
            if db.execute(f"SELECT COUNT(*) FROM jobs WHERE status IN ({marks})", WAITING).fetchone()[0] >= max_queued:
                return None
            job_id = job_id or new_job_id(kind)
            message = "validating its files" if status == VALIDATING else "waiting for earlier jobs"
            db.execute("INSERT INTO jobs (id, kind, status, params, created_at, message, owner) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (job_id, kind, status, json.dumps(params), time.time(), message, owner))
            add_event(db, job_id, f"Created job {job_id}")
            return self._get(db, job_id)

    def validated(self, job_id: str, params: dict, note: str) -> JobRecord | None:
        """validating_files → queued with the params the validation settled (its "auto" values chosen)."""
        with self.database.transaction(immediate=True) as db:
            changed = db.execute("UPDATE jobs SET status = ?, params = ?, message = ? WHERE id = ? AND status = ?",
                                 (QUEUED, json.dumps(params), "waiting for earlier jobs", job_id, VALIDATING))
            if changed.rowcount:
                add_event(db, job_id, f"Files validated ({note}); moving the job to the queue")
            return self._get(db, job_id)

    def jobs_in(self, status: str) -> list[JobRecord]:
        """Oldest first."""
        with self.database.transaction() as db:
            return [_record(row) for row in db.execute("SELECT * FROM jobs WHERE status = ? ORDER BY seq", (status,))]

    def next_queued(self) -> JobRecord | None:
        jobs = self.jobs_in(QUEUED)
        return jobs[0] if jobs else None

    def start(self, job_id: str) -> bool:
        """queued → running; False when the job was cancelled meanwhile."""
        with self.database.transaction(immediate=True) as db:
            changed = db.execute("UPDATE jobs SET status = ?, started_at = ?, message = ? WHERE id = ? AND status = ?",
                                 (RUNNING, time.time(), "starting the training process", job_id, QUEUED)).rowcount
            if changed:
                add_event(db, job_id, "Job started")
            return changed == 1

    def _set(self, job_id: str, **values) -> None:
        with self.database.transaction(immediate=True) as db:
            db.execute(f"UPDATE jobs SET {', '.join(f'{name} = ?' for name in values)} WHERE id = ?",
                       (*values.values(), job_id))

    def set_pid(self, job_id: str, pid: int) -> None:
        self._set(job_id, pid=pid)

    def set_trained_on(self, job_id: str, device: str, base_model: str) -> None:
        self._set(job_id, device=device, base_model=base_model)

    def set_staging(self, job_id: str, staging: pathlib.Path) -> None:
        self._set(job_id, staging=str(staging))

    def note(self, job_id: str, message: str, level: str = "info") -> None:
        """An event of the job's own: something its training noticed."""
        with self.database.transaction(immediate=True) as db:
            add_event(db, job_id, message, level)

    def update_progress(self, job_id: str, step: int, total_steps: int, loss: float | None, reward: float | None,
                        eta_seconds: float | None, message: str, metrics: dict | None = None) -> None:
        """The job's latest progress; with `metrics` (a step's or an epoch's logged figures), a metrics event too."""
        with self.database.transaction(immediate=True) as db:
            changed = db.execute("UPDATE jobs SET step = ?, total_steps = ?, loss = ?, reward = ?, eta_seconds = ?, "
                                 "message = ? WHERE id = ? AND status = ?",
                                 (step, total_steps, loss, reward, eta_seconds, message, job_id, RUNNING)).rowcount
            if changed and metrics:
                figures = ", ".join(f"{name}={value:.4g}" for name, value in metrics.items())
                add_event(db, job_id, f"Step {step}/{total_steps}: {figures}", kind="metrics",
                          data={"step": step, "total_steps": total_steps, **metrics})

    def publish_if_running(self, job_id: str, publish: Callable[[], str], trained_tokens: int | None = None,
                           also: Callable[[sqlite3.Connection], None] | None = None) -> str | None:
        """Runs `publish()` and marks the job succeeded with the version it returns (and the tokens it trained on),
        and then `also(db)` (records the job's result files), all while holding the write lock, only when the job is
        still running (not cancelled, not failed by a restart). None otherwise."""
        with self.database.transaction(immediate=True) as db:
            job = self._get(db, job_id)
            if job is None or job.status != RUNNING:
                return None
            version = publish()
            message = f"published {job.adapter} adapter version {version}"
            db.execute("UPDATE jobs SET status = ?, adapter_version = ?, finished_at = ?, eta_seconds = 0, "
                       "message = ?, trained_tokens = ? WHERE id = ?",
                       (SUCCEEDED, version, time.time(), message, trained_tokens, job_id))
            if also is not None:
                also(db)
            add_event(db, job_id, f"Job succeeded: {message}")
            return version

    def finish(self, job_id: str, status: str, error: str = "", only_if: tuple[str, ...] = (VALIDATING, QUEUED, RUNNING),
               error_code: str = "") -> JobRecord | None:
        """Moves a job still in one of `only_if` to a terminal `status`; returns the job as it is afterwards."""
        with self.database.transaction(immediate=True) as db:
            job = self._get(db, job_id)
            if job is None:
                return None
            if job.status in only_if:
                message = error or {CANCELLED: "cancelled"}.get(status, status)
                db.execute("UPDATE jobs SET status = ?, error = ?, error_code = ?, finished_at = ?, "
                           "eta_seconds = NULL, message = ? WHERE id = ?",
                           (status, error, error_code, time.time(), message, job_id))
                add_event(db, job_id, f"Job {status}" + (f": {error}" if error else ""),
                          "error" if status == FAILED else "info")
            return self._get(db, job_id)

    def events(self, job_id: str, before: str, limit: int) -> tuple[list[JobEvent], bool]:
        """Up to `limit` of the job's events, newest first, from before the event `before` (an event id: "" for the
        newest); and whether more follow."""
        with self.database.transaction() as db:
            return read_events(db, job_id, before, limit)

    def fail_interrupted(self, reason: str) -> list[JobRecord]:
        """At start-up: jobs left running by a trainer that died are failed with `reason`; returns them."""
        stale = self.jobs_in(RUNNING)
        for job in stale:
            self.finish(job.id, FAILED, reason, only_if=(RUNNING,), error_code="trainer_stopped")
        return stale

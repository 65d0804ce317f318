"""A job's events, as OpenAI's fine-tuning API lists them: every change of status, each logged training step's
figures ("metrics"), and what the job noticed in its data; written in the transaction of the change they record."""
import dataclasses
import json
import time


@dataclasses.dataclass(frozen=True)
class JobEvent:
    seq: int
    job_id: str
    created_at: float
    level: str  # info, warn or error
    type: str  # message or metrics
    message: str
    data: dict | None


def add_event(db, job_id: str, message: str, level: str = "info", kind: str = "message",
              data: dict | None = None) -> None:
    db.execute("INSERT INTO job_events (job_id, created_at, level, type, message, data) VALUES (?, ?, ?, ?, ?, ?)",
               (job_id, time.time(), level, kind, message, None if data is None else json.dumps(data)))


def read_events(db, job_id: str, before: str, limit: int) -> tuple[list[JobEvent], bool]:
    """Up to `limit` of the job's events, newest first, from before the event `before` (an event id; "" for the
    newest); and whether more follow."""
    start = event_seq(before)
    rows = db.execute("SELECT * FROM job_events WHERE job_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?",
                      (job_id, start if start is not None else 1 << 62, limit + 1)).fetchall()
    events = [JobEvent(**{**dict(row), "data": json.loads(row["data"]) if row["data"] else None})
              for row in rows[:limit]]
    return events, len(rows) > limit


EVENT_PREFIX = "ftevent-"


def event_id(event: JobEvent) -> str:
    return f"{EVENT_PREFIX}{event.seq:012d}"


def event_seq(event: str) -> int | None:
    """The sequence number an event id names; None for "" or an id no event can have."""
    digits = event.removeprefix(EVENT_PREFIX)
    return int(digits) if event.startswith(EVENT_PREFIX) and digits.isdigit() and len(digits) <= 18 else None

"""The files of OpenAI's files API: each one's content under MODELS_DIR/trainer/files/<id>, its record in the
trainer's database (services/trainer/database.py).

A content file is written under a temporary name first (`staging_path`), renamed to its id, and only then is its
record inserted: a process killed at any moment leaves no record without its content, only a temporary or orphaned
content file, which `clean` removes at start-up. A record is deleted before its content, in a transaction that
first checks no job that has not ended needs it.
"""
import dataclasses
import os
import pathlib
import sqlite3
import time
import uuid

from services.trainer.database import Database, trainer_dir
from services.trainer.jobs.store import TERMINAL

FINE_TUNE, RESULTS = "fine-tune", "fine-tune-results"  # what users upload, and a job's metrics file
ID_PREFIX = "file-"
_STAGING_PREFIX = ".upload-"


@dataclasses.dataclass(frozen=True)
class FileRecord:
    id: str
    owner: str  # the API key's name that uploaded it ('' without keys)
    filename: str
    purpose: str
    bytes: int
    created_at: float
    examples: int  # the examples it holds (0 for a metrics file)
    job_id: str | None  # the job whose results it is


def new_file_id() -> str:
    return f"{ID_PREFIX}{uuid.uuid4().hex[:24]}"


def _record(row: sqlite3.Row) -> FileRecord:
    values = dict(row)
    values.pop("seq")
    return FileRecord(**values)


class FileStore:
    def __init__(self, database: Database, folder: pathlib.Path) -> None:
        self.database = database
        self.folder = pathlib.Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    @classmethod
    def under(cls, models_dir: pathlib.Path) -> "FileStore":
        return cls(Database.under(models_dir), trainer_dir(models_dir) / "files")

    def staging_path(self) -> pathlib.Path:
        """A new temporary name beside the contents, for an upload being received."""
        return self.folder / f"{_STAGING_PREFIX}{uuid.uuid4().hex}"

    def content_path(self, file_id: str) -> pathlib.Path:
        return self.folder / file_id

    def add(self, staged: pathlib.Path, owner: str, filename: str, purpose: str, examples: int,
            job_id: str | None = None) -> FileRecord:
        """The fully written `staged` content becomes a new file: renamed to its id, then recorded."""
        record = self.placed(staged, owner, filename, purpose, examples, job_id)
        with self.database.transaction(immediate=True) as db:
            insert(db, record)
        return record

    def placed(self, staged: pathlib.Path, owner: str, filename: str, purpose: str, examples: int,
               job_id: str | None = None) -> FileRecord:
        """`staged` renamed to a new file's id, and the record to `insert` for it."""
        record = FileRecord(id=new_file_id(), owner=owner, filename=filename, purpose=purpose,
                            bytes=staged.stat().st_size, created_at=time.time(), examples=examples, job_id=job_id)
        os.replace(staged, self.content_path(record.id))
        return record

    def get(self, file_id: str) -> FileRecord | None:
        with self.database.transaction() as db:
            row = db.execute("SELECT * FROM files WHERE id = ?", (file_id,)).fetchone()
        return _record(row) if row else None

    def of_job(self, job_id: str) -> list[str]:
        """The ids of a job's result files."""
        with self.database.transaction() as db:
            return [row[0] for row in db.execute("SELECT id FROM files WHERE job_id = ? ORDER BY seq", (job_id,))]

    def page(self, owners: tuple[str, ...], purpose: str, after: str, limit: int, ascending: bool) \
            -> tuple[list[FileRecord], bool]:
        """Up to `limit` files owned by one of `owners` (of `purpose`, unless ""), newest first or oldest first,
        after the file `after` in that order; and whether more follow."""
        marks = ",".join("?" * len(owners))
        order, beyond = ("ASC", ">") if ascending else ("DESC", "<")
        with self.database.transaction() as db:
            rows = db.execute(
                f"SELECT * FROM files WHERE owner IN ({marks}) AND (? = '' OR purpose = ?) AND (? = '' OR seq "
                f"{beyond} (SELECT seq FROM files WHERE id = ?)) ORDER BY seq {order} LIMIT ?",
                (*owners, purpose, purpose, after, after, limit + 1)).fetchall()
        return [_record(row) for row in rows[:limit]], len(rows) > limit

    def delete(self, file_id: str) -> str | None:
        """Deletes the file, unless a job that has not ended names it: then returns that job's id."""
        marks = ",".join("?" * len(TERMINAL))
        with self.database.transaction(immediate=True) as db:
            user = db.execute(
                f"SELECT id FROM jobs WHERE status NOT IN ({marks}) AND (json_extract(params, '$.training_file') = ? "
                "OR json_extract(params, '$.validation_file') = ?) ORDER BY seq LIMIT 1",
                (*TERMINAL, file_id, file_id)).fetchone()
            if user is not None:
                return user[0]
            db.execute("DELETE FROM files WHERE id = ?", (file_id,))
        self.content_path(file_id).unlink(missing_ok=True)
        return None

    def clean(self) -> list[str]:
        """At start-up: removes uploads cut short and contents no record names (a process killed between the rename
        and the insert); returns their names."""
        with self.database.transaction() as db:
            recorded = {row[0] for row in db.execute("SELECT id FROM files")}
        removed = []
        for path in self.folder.iterdir():
            if path.name.startswith(_STAGING_PREFIX) or (path.name.startswith(ID_PREFIX) and path.name not in recorded):
                path.unlink(missing_ok=True)
                removed.append(path.name)
        return removed


def insert(db: sqlite3.Connection, record: FileRecord) -> None:
    """Records a file whose content is in place, inside the caller's transaction."""
    db.execute("INSERT INTO files (id, owner, filename, purpose, bytes, created_at, examples, job_id) "
               "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", tuple(dataclasses.astuple(record)))

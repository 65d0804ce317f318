"""The stored responses: each with its owner (the API key's name that made it, services/common/callers.py) and its
conversation (the chat messages it read after its instructions, and its output), so that `previous_response_id` can
go on from it. One SQLite file (LLM_RESPONSES_DB, by default under MODELS_DIR), so a response outlives a restart and
every llm replica that shares MODELS_DIR's volume sees it. Bounded: past LLM_RESPONSES_MAX_STORED the oldest go.
SQLite locks the file for each write: fine on a local or block volume, not on a network filesystem (NFS), where its
locks do not hold."""
import asyncio
import dataclasses
import json
import pathlib
import sqlite3
import threading
import time

from textgen.v1 import responses_pb2

from services.common.callers import visible_to

_SCHEMA = """CREATE TABLE IF NOT EXISTS responses (
    id TEXT PRIMARY KEY, owner TEXT NOT NULL, stored_at REAL NOT NULL, response BLOB NOT NULL,
    conversation TEXT NOT NULL)"""


def _places(values: tuple) -> str:
    return f"({','.join('?' * len(values))})"


class StoreUnavailable(Exception):
    """The SQLite file cannot be opened, read or written; the message names it."""


@dataclasses.dataclass(frozen=True)
class Stored:
    response: responses_pb2.Response
    conversation: list[dict]  # chat messages, as openai_pb2.ChatMessage's JSON


class ResponseStore:
    def __init__(self, path: pathlib.Path, max_stored: int) -> None:
        self.path, self.max_stored = pathlib.Path(path), max_stored
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._connection = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
            self._connection.execute("PRAGMA journal_mode=WAL")
            self._connection.execute(_SCHEMA)
        return self._connection

    def _put(self, response: responses_pb2.Response, owner: str, conversation: list[dict]) -> None:
        with self._lock, self._connect() as connection:
            connection.execute("INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?)", (
                response.id, owner, time.time(), response.SerializeToString(), json.dumps(conversation)))
            connection.execute("DELETE FROM responses WHERE id NOT IN (SELECT id FROM responses ORDER BY rowid "
                               "DESC LIMIT ?)", (self.max_stored,))

    def _get(self, response_id: str, who: str) -> Stored | None:
        owners = visible_to(who)
        with self._lock:
            row = self._connect().execute(
                f"SELECT response, conversation FROM responses WHERE id = ? AND owner IN {_places(owners)}",
                (response_id, *owners)).fetchone()
        return None if row is None else Stored(responses_pb2.Response.FromString(row[0]), json.loads(row[1]))

    def _delete(self, response_id: str, who: str) -> bool:
        owners = visible_to(who)
        with self._lock, self._connect() as connection:
            deleted = connection.execute(
                f"DELETE FROM responses WHERE id = ? AND owner IN {_places(owners)}",
                (response_id, *owners))
            return deleted.rowcount > 0

    async def _off_the_loop(self, function, *args):
        """`function(*args)` on a thread (a write waits for SQLite's lock, which another replica may hold), its
        SQLite error a StoreUnavailable naming the file."""
        try:
            return await asyncio.to_thread(function, *args)
        except (sqlite3.Error, OSError) as error:
            raise StoreUnavailable(f"the stored responses ({self.path}, LLM_RESPONSES_DB) cannot be used: {error}; "
                                   "a request with store false needs them only for previous_response_id") from None

    async def put(self, response: responses_pb2.Response, owner: str, conversation: list[dict]) -> None:
        await self._off_the_loop(self._put, response, owner, conversation)

    async def get(self, response_id: str, who: str) -> Stored | None:
        return await self._off_the_loop(self._get, response_id, who)

    async def delete(self, response_id: str, who: str) -> bool:
        return await self._off_the_loop(self._delete, response_id, who)

"""The request cache: every answer ever paid for, on disk, keyed by what was asked.

The key hashes the backend (kind, address, model), the messages, the sampling parameters
(seed included) and the output schema, so re-running a recipe never pays twice for the
same call. SQLite in WAL mode: concurrent readers, one writer at a time, crash-safe.
Answers are written in small batches; a killed process loses at most the last batch,
which the next run asks for again.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path

from datamill.llm.base import ChatRequest, Completion

# Keys on disk depend on these exact bytes: any change to them voids every cache.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def cache_key(identity: str, request: ChatRequest) -> str:
    payload = {
        "backend": identity,
        "messages": request.message_dicts(),
        "params": request.sampling(),
        "schema": request.json_schema,
    }
    return hashlib.sha256(_CANONICAL.encode(payload).encode()).hexdigest()


class RequestCache:
    def __init__(self, path: str | Path, batch: int = 256, max_delay: float = 0.25) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.batch, self.max_delay = batch, max_delay
        self._db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS completions (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
            " WITHOUT ROWID"
        )
        self._pending: dict[str, str] = {}
        self._last_flush = time.monotonic()

    def get(self, key: str) -> Completion | None:
        value = self._pending.get(key)
        if value is None:
            row = self._db.execute("SELECT value FROM completions WHERE key = ?", (key,)).fetchone()
            if row is None:
                return None
            value = row[0]
        return Completion.model_validate_json(value)

    def put(self, key: str, completion: Completion) -> None:
        self._pending[key] = completion.model_dump_json()
        if len(self._pending) >= self.batch or time.monotonic() - self._last_flush > self.max_delay:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany(
                    "INSERT OR REPLACE INTO completions VALUES (?, ?)", self._pending.items()
                )
            self._pending.clear()
        self._last_flush = time.monotonic()

    def __len__(self) -> int:
        self.flush()
        return int(self._db.execute("SELECT count(*) FROM completions").fetchone()[0])

    def close(self) -> None:
        self.flush()
        self._db.close()

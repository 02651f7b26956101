"""The request cache: every answer ever paid for, on disk, keyed by what was asked.

The key hashes the backend (kind, address, model), the messages, the sampling parameters
(seed included) and the output schema, so re-running a recipe never pays twice for the
same call. SQLite in WAL mode: concurrent readers, one writer at a time, crash-safe.

Answers are written in batches by a thread of their own, started once and fed batch by
batch, so a commit never stalls the event loop that is waiting for other answers (nor
does starting a thread, which takes milliseconds on a busy machine). Until its batch is
committed an answer is served from memory. A killed process loses at most the answers
not yet committed: the batch being written and the one filling up (at most
``2 * batch``), which the next run asks for again; a full batch waits for the one before
it, so no more pile up.
"""

from __future__ import annotations

import hashlib
import json
import queue
import sqlite3
import threading
import time
from pathlib import Path

from datamill.llm.base import ChatRequest, Completion

# Keys on disk depend on these exact bytes: any change to them voids every cache.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


_IDLE = 10.0  # seconds without a batch after which the writer thread ends


def cache_key(identity: str, request: ChatRequest) -> str:
    payload = {
        "backend": identity,
        "messages": request.message_dicts(),
        "params": request.sampling(),
        "schema": request.json_schema,
    }
    return hashlib.sha256(_CANONICAL.encode(payload).encode()).hexdigest()


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    return db


class RequestCache:
    def __init__(self, path: str | Path, batch: int = 256, max_delay: float = 0.25) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.batch, self.max_delay = batch, max_delay
        self._db = _connect(self.path)  # reads, from the caller's thread
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS completions (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
            " WITHOUT ROWID"
        )
        self._write_db = _connect(self.path)  # writes, from the writer thread only
        self._pending: dict[str, str] = {}  # filling up
        self._writing: dict[str, str] = {}  # handed to the writer, not committed yet
        self._writer: threading.Thread | None = None  # started at a batch, ends when idle
        self._writer_lock = threading.Lock()
        self._batches: queue.SimpleQueue[dict[str, str] | None] = queue.SimpleQueue()
        self._written = threading.Event()  # the last batch handed over is done with
        self._busy = False  # a batch was handed over and not waited for yet
        self._error: BaseException | None = None
        self._last_flush = time.monotonic()

    def get(self, key: str) -> Completion | None:
        value = self._pending.get(key) or self._writing.get(key)
        if value is None:
            row = self._db.execute("SELECT value FROM completions WHERE key = ?", (key,)).fetchone()
            if row is None:
                return None
            value = row[0]
        return Completion.model_validate_json(value)

    def put(self, key: str, completion: Completion) -> None:
        self._pending[key] = completion.model_dump_json()
        if len(self._pending) >= self.batch or time.monotonic() - self._last_flush > self.max_delay:
            self._hand_over()

    def _hand_over(self) -> None:
        """Start writing what is pending, after the write before it has finished."""
        self._wait()
        if not self._pending:
            return
        self._writing, self._pending = self._pending, {}
        self._last_flush = time.monotonic()
        self._written.clear()
        self._busy = True
        with self._writer_lock:
            if self._writer is None:
                self._writer = threading.Thread(
                    target=self._write_batches, name="datamill-cache-writer", daemon=True
                )
                self._writer.start()
            self._batches.put(self._writing)

    def _write_batches(self) -> None:
        """Write the batches handed over; end once none has come for ``_IDLE`` seconds,
        so that a cache nobody closes does not keep a thread (and itself) alive."""
        while True:
            try:
                rows = self._batches.get(timeout=_IDLE)
            except queue.Empty:
                with self._writer_lock:
                    if self._batches.empty():  # else a batch came meanwhile: write it
                        self._writer = None
                        return
                continue
            if rows is None:
                return
            self._write(rows)
            self._written.set()

    def _write(self, rows: dict[str, str]) -> None:
        try:
            with self._write_db:
                self._write_db.execute("BEGIN IMMEDIATE")
                self._write_db.executemany(
                    "INSERT OR REPLACE INTO completions VALUES (?, ?)", rows.items()
                )
        except BaseException as e:  # raised in the caller's thread by the next _wait
            self._error = e

    def _wait(self) -> None:
        """Wait for the write in progress; raise what it failed with, if it did."""
        if self._busy:
            self._written.wait()
            self._busy = False
            if self._error is None:
                self._writing = {}
        if self._error is not None:
            error, self._error = self._error, None
            self._pending = {**self._writing, **self._pending}  # kept, to be written again
            self._writing = {}
            raise error

    def start_flush(self) -> None:
        """Start writing everything pending; ``flush`` waits until it is committed."""
        self._hand_over()

    def flush(self) -> None:
        """Write everything pending and wait until it is committed."""
        self._hand_over()
        self._wait()
        self._last_flush = time.monotonic()

    def __len__(self) -> int:
        self.flush()
        return int(self._db.execute("SELECT count(*) FROM completions").fetchone()[0])

    def close(self) -> None:
        try:
            self.flush()
        finally:
            with self._writer_lock:
                writer, self._writer = self._writer, None
                if writer is not None:
                    self._batches.put(None)
            if writer is not None:
                writer.join()
            self._db.close()
            self._write_db.close()

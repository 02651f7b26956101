"""When map has yielded its last outcome, the answers it got are being committed already."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from datamill.llm.base import ChatRequest
from datamill.llm.cache import RequestCache
from datamill.llm.engine import Engine
from datamill.llm.openai_compat import OpenAICompatBackend
from datamill.llm.stub_server import StubServer
from datamill.records import Message


def committed(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute("SELECT count(*) FROM completions").fetchone()[0])
    finally:
        db.close()


def test_the_last_answers_are_committed_without_waiting_for_close(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    # Batches far larger than the run and no deadline: only the end of map writes them.
    cache = RequestCache(path, batch=10_000, max_delay=3600)

    async def main() -> int:
        with StubServer() as stub:
            engine = Engine(OpenAICompatBackend(stub.url, "m"), concurrency=4, cache=cache)
            requests = (
                ChatRequest(messages=[Message(role="user", content=f"q{i}")]) for i in range(7)
            )
            outcomes = [o async for o in engine.map(requests)]
            assert all(o.ok for o in outcomes)
            deadline = time.monotonic() + 10
            while (count := committed(path)) < 7 and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            await engine.aclose()
            return count

    assert asyncio.run(main()) == 7
    cache.close()

"""Deadlines in the HTTP client the engine calls through: each request fails with
TimeoutError at its own deadline, whatever else is in flight, against a real loopback server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from datamill.llm import ChatRequest
from datamill.llm.engine import Engine
from datamill.llm.http import Client
from datamill.llm.openai_compat import OpenAICompatBackend
from datamill.llm.retry import RetryPolicy
from datamill.records import Message

ANSWER = b'{"choices":[{"message":{"content":"late"},"finish_reason":"stop"}]}'


@asynccontextmanager
async def server() -> AsyncIterator[tuple[str, list[int]]]:
    """Answers POST .../<ms> after that many milliseconds, and any other path never;
    yields its URL and the ports connections came from."""
    peers: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peers.append(writer.get_extra_info("peername")[1])
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                length = next(
                    int(line.split(":")[1])
                    for line in lines
                    if line.lower().startswith("content-length:")
                )
                await reader.readexactly(length)
                wait = lines[0].split(" ")[1].rsplit("/", 1)[1]
                await asyncio.sleep(int(wait) / 1000 if wait.isdigit() else 3600)
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(ANSWER)}\r\n\r\n".encode()
                    + ANSWER
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            writer.close()

    listener = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/v1", peers
    finally:
        listener.close()


async def timed(coro: object) -> tuple[str, float]:
    start = time.monotonic()
    try:
        await coro  # type: ignore[misc]
        return "answered", time.monotonic() - start
    except TimeoutError:
        return "timeout", time.monotonic() - start


def test_a_request_without_an_answer_times_out_at_its_deadline() -> None:
    async def main() -> tuple[str, float]:
        async with server() as (url, _):
            client = Client(url)
            try:
                return await timed(client.post("/never", b"{}", timeout=0.3))
            finally:
                await client.aclose()

    outcome, seconds = asyncio.run(main())
    assert outcome == "timeout"
    assert 0.3 <= seconds < 2.0


def test_each_request_has_its_own_deadline_whatever_came_before() -> None:
    async def main() -> list[tuple[str, float]]:
        async with server() as (url, _):
            client = Client(url)
            try:
                # The long deadline is set first, the short one after: the short still
                # fires on time, and the long one's answer, due before its deadline, comes.
                return await asyncio.gather(
                    timed(client.post("/wait/800", b"{}", timeout=5.0)),
                    timed(client.post("/never", b"{}", timeout=0.2)),
                    timed(client.post("/wait/100", b"{}", timeout=3.0)),
                    timed(client.post("/never", b"{}", timeout=0.5)),
                )
            finally:
                await client.aclose()

    (a, ta), (b, tb), (c, tc), (d, td) = asyncio.run(main())
    assert (a, b, c, d) == ("answered", "timeout", "answered", "timeout")
    assert 0.2 <= tb < 0.6 and 0.5 <= td < 0.8 < ta
    assert tc < 0.5


def test_a_timed_out_connection_is_never_reused() -> None:
    async def main() -> tuple[str, list[int], bytes]:
        async with server() as (url, peers):
            client = Client(url)
            try:
                late, _ = await timed(client.post("/wait/500", b"{}", timeout=0.1))
                answer = await client.post("/wait/0", b"{}", timeout=5)
                await asyncio.sleep(0.6)  # the first answer arrives, on a closed connection
                again = await client.post("/wait/0", b"{}", timeout=5)
                assert again.body == answer.body
                return late, peers, answer.body
            finally:
                await client.aclose()

    late, peers, body = asyncio.run(main())
    assert late == "timeout"
    assert body == ANSWER
    assert len(peers) == 2  # one for the request that timed out, one kept alive after it


def test_waiting_for_a_connection_counts_towards_the_deadline() -> None:
    async def main() -> list[tuple[str, float]]:
        async with server() as (url, _):
            client = Client(url, max_connections=1)
            try:
                first = asyncio.create_task(timed(client.post("/wait/600", b"{}", timeout=5)))
                await asyncio.sleep(0.05)
                second = await timed(client.post("/wait/0", b"{}", timeout=0.2))
                return [await first, second]
            finally:
                await client.aclose()

    (first, _), (second, seconds) = asyncio.run(main())
    assert (first, second) == ("answered", "timeout")
    assert 0.2 <= seconds < 0.5


def test_the_engine_reports_a_timeout_as_a_retryable_failure() -> None:
    async def main() -> tuple[str | None, int]:
        async with server() as (url, _):
            backend = OpenAICompatBackend(url, "m", timeout=0.2)
            retry = RetryPolicy(max_attempts=2, base_seconds=0.01)
            async with Engine(backend, retry=retry) as engine:
                request = ChatRequest(messages=[Message(role="user", content="hi")])
                # Calls go to /v1/chat/completions, which this server never answers.
                outcome = await engine.complete(request)
                return (outcome.error.cause if outcome.error else None), outcome.attempts

    assert asyncio.run(main()) == ("timeout", 2)

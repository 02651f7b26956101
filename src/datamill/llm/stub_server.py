"""A loopback OpenAI-compatible server with scripted faults, for tests and benchmarks.

It answers ``POST /v1/chat/completions`` after a fixed latency with a deterministic reply
(a function of the messages and the seed), and can be told to fail on chosen prompts:
``429`` (with ``Retry-After``), ``500``, ``400``, ``slow`` (answer after the client gave
up), ``garbage`` (a 200 whose body is not JSON), ``drop`` (close the connection without
answering) or ``redirect`` (a 307 to another address). Given an ``ssl.SSLContext`` it
serves https. ``GET /stats`` tells how many calls each prompt received, so tests can check
that nothing was paid for twice.

Run it alone with ``python -m datamill.llm.stub_server --port 8000 --latency 0.1``; with
``--workers K`` it runs K processes on the same port (SO_REUSEPORT), and with ``--fast`` it
serves the happy path only on bare asyncio, a third of the CPU per request: for benchmarks,
where the server must not be what limits the client being measured.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections import Counter
from typing import Any

from aiohttp import web

from datamill.llm.schema_example import example

FAULTS = ("429", "500", "400", "slow", "garbage", "drop", "redirect")


def _requested_schema(body: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON schema a request asks its answer to follow, in any of the three dialects."""
    if "guided_json" in body:
        return dict(body["guided_json"])
    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        return dict(fmt["json_schema"]["schema"])
    if fmt.get("type") == "json_object":
        return dict(fmt.get("schema") or {"type": "object"})
    return None


def reply_for(body: dict[str, Any]) -> str:
    """The deterministic answer to a request: text, or JSON following the requested schema."""
    last = body["messages"][-1].get("content") or ""
    digest = hashlib.sha256(
        json.dumps([body["messages"], body.get("seed")], sort_keys=True).encode()
    ).hexdigest()[:12]
    schema = _requested_schema(body)
    if schema is not None:
        return json.dumps(example(schema, digest))
    return f"reply {digest} to: {last[:40]}"


def chat_completion(body: dict[str, Any], text: str) -> dict[str, Any]:
    """The OpenAI-style response carrying ``text``, with word counts for token usage."""
    prompt_tokens = sum(len((m.get("content") or "").split()) for m in body["messages"])
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "model": body.get("model", "stub"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(text.split()),
            "total_tokens": prompt_tokens + len(text.split()),
        },
    }


class StubServer:
    """The server's state: latency, the fault script and per-prompt call counts."""

    def __init__(
        self, latency: float = 0.0, slow_seconds: float = 30.0, tls: ssl.SSLContext | None = None
    ) -> None:
        self.latency = latency
        self.slow_seconds = slow_seconds
        self.tls = tls
        self.faults: dict[str, list[str]] = {}  # prompt substring -> faults for next calls
        self.calls: Counter[str] = Counter()
        self.scripted_replies: dict[str, list[str]] = {}  # prompt substring -> replies
        self.port = 0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None

    def fail(self, match: str, *faults: str) -> None:
        """The next calls whose last message contains ``match`` fail with ``faults``, in order."""
        unknown = set(faults) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}; known: {FAULTS}")
        self.faults.setdefault(match, []).extend(faults)

    def reply(self, match: str, *texts: str) -> None:
        """The next calls whose last message contains ``match`` get ``texts``, in order."""
        self.scripted_replies.setdefault(match, []).extend(texts)

    def _take(self, script: dict[str, list[str]], prompt: str) -> str | None:
        for match, queue in script.items():
            if match in prompt and queue:
                return queue.pop(0)
        return None

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        prompt = body["messages"][-1].get("content") or ""
        self.calls[prompt] += 1
        if self.latency:
            await asyncio.sleep(self.latency)
        fault = self._take(self.faults, prompt)
        if fault == "429":
            return web.json_response(
                {"error": {"message": "rate limited"}}, status=429, headers={"Retry-After": "0.05"}
            )
        if fault == "500":
            return web.json_response({"error": {"message": "internal error"}}, status=500)
        if fault == "400":
            return web.json_response(
                {"error": {"message": "This model's maximum context length is 2048 tokens"}},
                status=400,
            )
        if fault == "slow":
            await asyncio.sleep(self.slow_seconds)
        if fault == "garbage":
            return web.Response(text="<html>502 Bad Gateway</html>", content_type="text/html")
        if fault == "redirect":
            location = f"{self.url.replace('127.0.0.1', 'localhost')}/chat/completions"
            return web.json_response({}, status=307, headers={"Location": location})
        if fault == "drop":
            assert request.transport is not None
            request.transport.close()
            return web.Response()
        text = self._take(self.scripted_replies, prompt) or reply_for(body)
        return web.json_response(chat_completion(body, text))

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response({"calls": dict(self.calls)})

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024**2)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/stats", self._stats)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0, reuse_port: bool = False) -> int:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(
            self._runner,
            host,
            port,
            backlog=4096,
            reuse_port=reuse_port or None,
            ssl_context=self.tls,
        )
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self.port

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}/v1"

    # -- in a background thread, for tests ------------------------------------------------

    def __enter__(self) -> StubServer:
        started = threading.Event()

        def serve() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(self.start())
            started.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()
        started.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._runner is not None
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)


class _FastConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection of the fast server (see :class:`FastStubServer`)."""

    def __init__(self, server: FastStubServer) -> None:
        self.server = server
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.queue: list[asyncio.Future[bytes]] = []  # responses, in request order

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.transport is not None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = self.buffer[:end].decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if "chunked" in headers.get("transfer-encoding", ""):
                self._send(501, b'{"error": {"message": "chunked bodies are not supported"}}')
                self.transport.close()
                return
            length = int(headers.get("content-length") or 0)
            if len(self.buffer) < end + 4 + length:
                if headers.get("expect", "").lower() == "100-continue":
                    self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                return
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            close = headers.get("connection", "").lower() == "close"
            self._handle(method, target.split("?", 1)[0], body, close)

    def _handle(self, method: str, path: str, raw: bytes, close: bool) -> None:
        loop = asyncio.get_running_loop()
        if method == "POST" and path == "/v1/chat/completions":
            try:
                body = json.loads(raw)
                prompt = body["messages"][-1].get("content") or ""
            except (ValueError, KeyError, IndexError, TypeError, AttributeError):
                self._send(400, b'{"error": {"message": "not a chat completion request"}}', close)
                return
            self.server.calls[prompt] += 1
            loop.call_later(self.server.latency, self._answer, body, close)
        elif method == "GET" and path == "/stats":
            self._send(200, json.dumps({"calls": dict(self.server.calls)}).encode(), close)
        else:
            self._send(404, b'{"error": {"message": "not found"}}', close)

    def _answer(self, body: dict[str, Any], close: bool) -> None:
        payload = json.dumps(chat_completion(body, reply_for(body))).encode()
        self._send(200, payload, close)

    def _send(self, status: int, payload: bytes, close: bool = False) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found"}.get(status, "Error")
        head = (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n"
            + ("Connection: close\r\n" if close else "")
            + "\r\n"
        )
        self.transport.write(head.encode() + payload)
        if close:
            self.transport.close()


class FastStubServer:
    """The stub's happy path only, on bare asyncio: about a third of the CPU per request.

    Same answers as :class:`StubServer` (``reply_for``, ``chat_completion``), after the same
    fixed latency, but no faults and no scripted replies. For benchmarks, where the server
    shares the machine's cores with the client being measured.
    """

    def __init__(self, latency: float = 0.0) -> None:
        self.latency = latency
        self.calls: Counter[str] = Counter()
        self.port = 0

    async def start(self, host: str = "127.0.0.1", port: int = 0, reuse_port: bool = False) -> int:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: _FastConnection(self), host, port, backlog=4096, reuse_port=reuse_port or None
        )
        self.port = server.sockets[0].getsockname()[1]
        return self.port


def _watch_parent(parent: int) -> None:
    """End this worker when the process that started it is gone."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes sharing the port (SO_REUSEPORT); /stats then counts per worker",
    )
    parser.add_argument(
        "--fast",
        action="store_true",
        help="the happy path only (no faults), on bare asyncio: for benchmarks",
    )
    parser.add_argument("--parent", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    server = FastStubServer(args.latency) if args.fast else StubServer(latency=args.latency)
    children: list[subprocess.Popen[str]] = []
    if args.parent:
        threading.Thread(target=_watch_parent, args=(args.parent,), daemon=True).start()

    def stop(*_: object) -> None:
        for child in children:
            child.terminate()
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)

    async def run() -> None:
        port = await server.start(port=args.port, reuse_port=args.workers > 1 or args.parent > 0)
        for _ in range(args.workers - 1):
            command = [sys.executable, "-m", "datamill.llm.stub_server", "--port", str(port)]
            command += ["--latency", str(args.latency), "--parent", str(os.getpid())]
            command += ["--fast"] if args.fast else []
            child = subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                text=True,
            )
            children.append(child)
            assert child.stdout is not None
            child.stdout.readline()  # listening
        print(port, flush=True)
        await asyncio.Event().wait()

    try:
        asyncio.run(run())
    finally:
        for child in children:
            child.terminate()


if __name__ == "__main__":
    main()

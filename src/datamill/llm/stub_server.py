"""A loopback OpenAI-compatible server with scripted faults, for tests and benchmarks.

It answers ``POST /v1/chat/completions`` after a fixed latency with a deterministic reply
(a function of the messages and the seed), and can be told to fail on chosen prompts:
``429`` (with ``Retry-After``), ``500``, ``400``, ``slow`` (answer after the client gave
up), ``garbage`` (a 200 whose body is not JSON) or ``drop`` (close the connection without
answering). ``GET /stats`` tells how many calls each prompt received, so tests can check
that nothing was paid for twice.

Run it alone with ``python -m datamill.llm.stub_server --port 8000 --latency 0.1``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import threading
from collections import Counter
from typing import Any

from aiohttp import web

FAULTS = ("429", "500", "400", "slow", "garbage", "drop")


def reply_for(body: dict[str, Any]) -> str:
    """The deterministic answer to a request."""
    last = body["messages"][-1].get("content") or ""
    digest = hashlib.sha256(
        json.dumps([body["messages"], body.get("seed")], sort_keys=True).encode()
    ).hexdigest()[:12]
    if body.get("response_format"):
        return json.dumps({"answer": f"{digest}", "echo": last[:40]})
    return f"reply {digest} to: {last[:40]}"


class StubServer:
    """The server's state: latency, the fault script and per-prompt call counts."""

    def __init__(self, latency: float = 0.0, slow_seconds: float = 30.0) -> None:
        self.latency = latency
        self.slow_seconds = slow_seconds
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
        if fault == "drop":
            assert request.transport is not None
            request.transport.close()
            return web.Response()
        text = self._take(self.scripted_replies, prompt) or reply_for(body)
        prompt_tokens = sum(len((m.get("content") or "").split()) for m in body["messages"])
        return web.json_response(
            {
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
        )

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response({"calls": dict(self.calls)})

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024**2)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/stats", self._stats)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, backlog=4096)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self.port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0)
    args = parser.parse_args()
    server = StubServer(latency=args.latency)

    async def run() -> None:
        port = await server.start(port=args.port)
        print(port, flush=True)
        await asyncio.Event().wait()

    asyncio.run(run())


if __name__ == "__main__":
    main()

"""datamill's HTTP client against real loopback servers: chunked and compressed answers,
redirects refused, TLS verified, and proxies taken from the environment."""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
import zlib
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import certifi
import pytest
from aiohttp import web

from datamill.errors import DatamillError
from datamill.llm import ChatRequest
from datamill.llm.engine import Engine, Outcome
from datamill.llm.http import Client, HTTPError, tls_context
from datamill.llm.openai_compat import OpenAICompatBackend
from datamill.llm.retry import RetryPolicy
from datamill.llm.stub_server import StubServer
from datamill.records import Message
from support import require

T = TypeVar("T")
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY")


@pytest.fixture(autouse=True)
def no_proxy_from_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sets the proxy variables it means; none leak in from the machine."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def ask(text: str) -> ChatRequest:
    return ChatRequest(messages=[Message(role="user", content=text)])


def one_call(url: str, text: str, attempts: int = 3) -> tuple[Outcome, Engine]:
    engine = Engine(
        OpenAICompatBackend(url, "stub", timeout=10),
        retry=RetryPolicy(max_attempts=attempts, base_seconds=0.01),
    )

    async def go() -> Outcome:
        async with engine:
            return await engine.complete(ask(text))

    return asyncio.run(go()), engine


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


# -- how the body comes --------------------------------------------------------------------


class Encoded(StubServer):
    """The stub server, sending its answers chunked (in small pieces) and compressed."""

    def __init__(self, coding: str | None) -> None:
        super().__init__()
        self.coding = coding

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        answer = await super()._chat(request)
        assert isinstance(answer, web.Response) and answer.body is not None
        body = bytes(answer.body)  # type: ignore[arg-type]
        headers = {"Content-Type": "application/json"}
        if self.coding == "gzip":
            packer = zlib.compressobj(wbits=31)
            body = packer.compress(body) + packer.flush()
        elif self.coding == "deflate":
            body = zlib.compress(body)
        if self.coding:
            headers["Content-Encoding"] = self.coding
        response = web.StreamResponse(status=answer.status, headers=headers)
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(body), 7):
            await response.write(body[start : start + 7])
        await response.write_eof()
        return response


@pytest.mark.parametrize("coding", [None, "gzip", "deflate"])
def test_chunked_and_compressed_answers_are_read_whole(coding: str | None) -> None:
    with Encoded(coding) as server:
        outcomes = []
        for text in ["first question", "second question on the same connection"]:
            outcome, _ = one_call(server.url, text)
            outcomes.append(outcome)
        calls = dict(server.calls)
    for outcome, text in zip(outcomes, ["first question", "second question"], strict=True):
        assert outcome.ok and outcome.completion is not None, outcome.error
        assert text in outcome.completion.text
    assert sum(calls.values()) == 2


def test_a_corrupt_compressed_body_is_a_connection_error_not_a_crash() -> None:
    class Corrupt(StubServer):
        async def _chat(self, request: web.Request) -> web.StreamResponse:
            return web.Response(
                body=b"\x1f\x8b\x08\x00 this is not gzip",
                headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
            )

    with Corrupt() as server:
        outcome, engine = one_call(server.url, "anything", attempts=2)
    assert outcome.error is not None and outcome.error.cause == "connection"
    assert "undecodable gzip body" in outcome.error.detail
    assert engine.stats.retries == {"connection": 1}


# -- redirects -----------------------------------------------------------------------------


def test_a_redirect_is_refused_with_a_clear_error_and_not_followed() -> None:
    with StubServer() as server:
        server.fail("moved", "redirect")
        outcome, engine = one_call(server.url, "moved away")
        calls = dict(server.calls)
    assert outcome.error is not None and outcome.error.cause == "redirect"
    assert not outcome.error.retryable and outcome.attempts == 1
    assert "307" in outcome.error.detail and "localhost" in outcome.error.detail
    assert "set base_url" in outcome.error.detail
    assert calls == {"moved away": 1}  # asked once, and not again at the new address
    assert engine.stats.failures == {"redirect": 1}


# -- TLS -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    """A certificate authority of the test's own, and its certificate as a PEM file."""
    trustme = require("trustme", "pip install 'datamill[dev]'")
    ca = trustme.CA()
    pem = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(pem))
    return ca, pem


@pytest.fixture
def tls_server(authority: tuple[Any, Path]) -> Iterator[StubServer]:
    ca, _ = authority
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    with StubServer(tls=context) as server:
        yield server


def test_https_works_with_a_certificate_the_system_trusts(
    tls_server: StubServer, authority: tuple[Any, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(authority[1]))  # as a user adds their own CA
    assert tls_server.url.startswith("https://")
    outcome, _ = one_call(tls_server.url, "over TLS")
    assert outcome.ok and outcome.completion is not None, outcome.error
    assert outcome.completion.text.endswith("to: over TLS")


def test_an_untrusted_certificate_is_refused_at_once(tls_server: StubServer) -> None:
    outcome, engine = one_call(tls_server.url, "over TLS")
    assert outcome.error is not None and outcome.error.cause == "connection"
    assert "untrusted certificate" in outcome.error.detail
    assert not outcome.error.retryable and outcome.attempts == 1
    assert not engine.stats.retries
    assert tls_server.calls == {}


def test_the_tls_context_trusts_certifis_authorities_where_the_system_has_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "none.pem"))  # a bare container
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path))
    bundle = Path(certifi.where()).read_text()
    context = tls_context()
    assert len(context.get_ca_certs()) == bundle.count("BEGIN CERTIFICATE") > 100
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


# -- proxies -------------------------------------------------------------------------------


class Proxy:
    """A loopback HTTP proxy in a thread: CONNECT tunnels and absolute-form requests.

    It notes the first line and the Proxy-Authorization header of what each client connection
    asks, then relays bytes both ways. With ``refuse`` it answers that status instead.
    """

    def __init__(self, refuse: int | None = None) -> None:
        self.refuse = refuse
        self.seen: list[tuple[str, str | None]] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        fields = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
        self.seen.append((lines[0], fields.get("Proxy-Authorization")))
        if self.refuse:
            writer.write(f"HTTP/1.1 {self.refuse} No\r\nContent-Length: 0\r\n\r\n".encode())
            writer.close()
            return
        method, target, _ = lines[0].split(" ")
        if method == "CONNECT":
            host, port = target.rsplit(":", 1)
        else:  # absolute form: http://host:port/path; the server takes it as it is
            host, port = target.split("/")[2].rsplit(":", 1)
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        if method == "CONNECT":
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:
            up_writer.write(head)

        async def relay(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            while data := await source.read(65536):
                sink.write(data)
            sink.close()

        await asyncio.gather(relay(reader, up_writer), relay(up_reader, writer))

    def __enter__(self) -> Proxy:
        self._thread.start()
        start = asyncio.start_server(self._handle, "127.0.0.1", 0)
        server = asyncio.run_coroutine_threadsafe(start, self._loop).result(10)
        self.port = server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    @property
    def url(self) -> str:
        return f"http://user:p%40ss@127.0.0.1:{self.port}"


def test_https_goes_through_the_proxy_the_environment_names(
    tls_server: StubServer, authority: tuple[Any, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(authority[1]))
    with Proxy() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        outcome, _ = one_call(tls_server.url, "tunnelled")
        seen = list(proxy.seen)
    assert outcome.ok, outcome.error
    # user:p@ss, as the URL spells it with the @ escaped
    assert seen == [(f"CONNECT 127.0.0.1:{tls_server.port} HTTP/1.1", "Basic dXNlcjpwQHNz")]
    assert tls_server.calls == {"tunnelled": 1}


def test_plain_http_goes_through_the_proxy_in_absolute_form(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with StubServer() as server, Proxy() as proxy:
        monkeypatch.setenv("http_proxy", proxy.url)
        outcome, _ = one_call(server.url, "proxied")
        seen = list(proxy.seen)
    assert outcome.ok, outcome.error
    url = f"{server.url}/chat/completions"
    assert seen == [(f"POST {url} HTTP/1.1", "Basic dXNlcjpwQHNz")]


def test_no_proxy_exempts_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    with StubServer() as server, Proxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "example.org, 127.0.0.1")
        outcome, _ = one_call(server.url, "direct")
        seen = list(proxy.seen)
    assert outcome.ok and seen == []
    assert server.calls == {"direct": 1}


def test_a_proxy_that_refuses_the_tunnel_is_a_clear_error(
    tls_server: StubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Proxy(refuse=407) as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        outcome, _ = one_call(tls_server.url, "refused")
    assert outcome.error is not None and not outcome.error.retryable
    assert "the proxy answered 407 to CONNECT" in outcome.error.detail
    assert f"through the proxy 127.0.0.1:{proxy.port}" in outcome.error.detail


@pytest.mark.parametrize("value", ["socks5://127.0.0.1:1080", "http://127.0.0.1:notaport"])
def test_a_proxy_datamill_cannot_use_is_refused_when_the_backend_is_made(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", value)
    with pytest.raises(DatamillError, match="HTTPS_PROXY"):
        OpenAICompatBackend("https://api.example.org/v1", "some-model")
    OpenAICompatBackend("http://127.0.0.1:8000/v1", "local-model")  # plain http: no proxy set


def test_the_client_raises_http_errors_only() -> None:
    async def go() -> None:
        client = Client("http://127.0.0.1:9/v1")  # the discard port: nobody listens
        try:
            with pytest.raises(HTTPError, match=r"cannot connect to 127\.0\.0\.1:9"):
                await client.post("/chat/completions", json.dumps({}).encode())
        finally:
            await client.aclose()

    run(go())

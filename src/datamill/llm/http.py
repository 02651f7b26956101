"""A small HTTP/1.1 client for JSON POSTs to one server, with keep-alive connections.

It does what an OpenAI-compatible API needs and nothing more: POST a body, read the
answer (``Content-Length``, chunked, or until the server closes; gzip and deflate), over
plain TCP or TLS, reusing connections. No redirects, cookies or proxies: APIs answer
directly, and the aiohttp session this replaces was not told about any proxy either.

Why not aiohttp: its client was most of datamill's CPU per request, which capped a loopback
run at 256 concurrent requests on 2 cores near 0.7 of the ideal rate. Measured the same way
(keep-alive POSTs with JSON encoding and decoding included), this client takes well under
half of aiohttp's CPU per request; see benchmarks/llm_throughput.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
import zlib
from dataclasses import dataclass
from urllib.parse import urlsplit

from datamill.errors import DatamillError

_HEADER_END = b"\r\n\r\n"


class HTTPError(Exception):
    """The exchange failed below HTTP: no connection, or it broke before a full answer."""


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # names in lower case; repeated headers joined with ", "
    body: bytes


class _Connection(asyncio.Protocol):
    """One connection: sends a request, parses the response as the bytes arrive."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = time.monotonic()
        self._waiter: asyncio.Future[Response] | None = None
        self._buffer = bytearray()
        self._reset()

    def _reset(self) -> None:
        self._status = 0
        self._headers: dict[str, str] = {}
        self._length: int | None = None  # None: chunked or until close
        self._chunked = False
        self._keep_alive = True
        self._body = bytearray()
        self._offset = 0  # chunked: how far ``_buffer`` is decoded

    # -- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self._waiter is None:  # nothing asked: a stray byte makes the connection unusable
            self.close()
            return
        self._buffer += data
        try:
            self._parse()
        except (ValueError, IndexError) as e:
            self._fail(HTTPError(f"malformed response: {e}"))

    def eof_received(self) -> bool:
        self.closed = True
        if self._waiter is not None and self._status and self._length is None and not self._chunked:
            self._body = self._buffer[:]  # the body ran until the server closed
            self._buffer.clear()
            self._finish()
        return False  # let the transport close

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.transport = None
        self._fail(HTTPError(f"server disconnected: {exc}" if exc else "server disconnected"))

    # -- parsing ------------------------------------------------------------------------

    def _parse(self) -> None:
        buffer = self._buffer
        while not self._status:
            end = buffer.find(_HEADER_END)
            if end < 0:
                return
            lines = buffer[:end].decode("latin-1").split("\r\n")
            del buffer[: end + 4]
            version, status, *_ = lines[0].split(" ", 2)
            code = int(status)
            if 100 <= code < 200:  # interim answer (100 Continue and the like): skip it
                continue
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                name, value = name.strip().lower(), value.strip()
                headers[name] = f"{headers[name]}, {value}" if name in headers else value
            self._status, self._headers = code, headers
            connection = headers.get("connection", "").lower()
            self._keep_alive = (
                "keep-alive" in connection if version == "HTTP/1.0" else "close" not in connection
            )
            if code in (204, 304):
                self._length = 0
            elif "chunked" in headers.get("transfer-encoding", "").lower():
                self._chunked = True
            elif "content-length" in headers:
                self._length = int(headers["content-length"])
            else:
                self._keep_alive = False  # the body ends when the server closes
        if self._chunked:
            self._parse_chunks()
        elif self._length is not None and len(buffer) >= self._length:
            self._body = buffer[: self._length]
            del buffer[: self._length]
            self._finish()

    def _parse_chunks(self) -> None:
        buffer = self._buffer
        while True:
            line_end = buffer.find(b"\r\n", self._offset)
            if line_end < 0:
                return
            size = int(bytes(buffer[self._offset : line_end]).split(b";", 1)[0], 16)
            if size == 0:  # the last chunk; then optional trailer lines and an empty line
                position = line_end + 2
                while (line_end := buffer.find(b"\r\n", position)) != position:
                    if line_end < 0:
                        return
                    position = line_end + 2
                del buffer[: position + 2]
                self._finish()
                return
            start, stop = line_end + 2, line_end + 2 + size
            if len(buffer) < stop + 2:
                return
            self._body += buffer[start:stop]
            self._offset = stop + 2

    def _finish(self) -> None:
        body = bytes(self._body)
        encoding = self._headers.get("content-encoding", "").lower()
        try:
            if encoding in ("gzip", "x-gzip", "deflate"):
                body = zlib.decompress(body, 47)  # gzip or zlib framing, by its header
        except zlib.error:
            try:
                body = zlib.decompress(body, -15)  # deflate without framing
            except zlib.error as e:
                self._fail(HTTPError(f"undecodable {encoding} body: {e}"))
                return
        response = Response(self._status, self._headers, body)
        if not self._keep_alive or self._buffer:
            self.close()
        waiter, self._waiter = self._waiter, None
        self._reset()
        self.idle_since = time.monotonic()
        if waiter is not None and not waiter.done():
            waiter.set_result(response)

    def _fail(self, error: Exception) -> None:
        self.close()
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)

    # -- use ----------------------------------------------------------------------------

    def send(self, data: bytes, waiter: asyncio.Future[Response]) -> None:
        if self.transport is None or self.closed:  # the server closed it as it was made
            raise HTTPError("server disconnected")
        self._waiter = waiter
        self.transport.write(data)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


def split_url(url: str) -> tuple[str, str, int, str, str]:
    """Scheme, host, port, path and Host header of an http(s) URL; DatamillError if it is not."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise DatamillError(f"{url}: not a valid address ({e})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DatamillError(f"{url}: not an http:// or https:// address")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if port is not None:
        host += f":{port}"
    default = 443 if parts.scheme == "https" else 80
    return parts.scheme, parts.hostname, port or default, parts.path.rstrip("/"), host


class Client:
    """POSTs to one server over a pool of keep-alive connections.

    ``max_connections`` caps the requests in flight (0: no cap); idle connections are
    reused for ``keepalive`` seconds.
    """

    def __init__(
        self,
        base_url: str,
        headers: dict[str, str] | None = None,
        max_connections: int = 0,
        keepalive: float = 60.0,
    ) -> None:
        scheme, self.host, self.port, self.path, host = split_url(base_url)
        self.ssl = ssl.create_default_context() if scheme == "https" else None
        fixed = {"Host": host, "Accept": "application/json", "Accept-Encoding": "gzip, deflate"}
        fixed.update(headers or {})
        self._fixed = "".join(f"{name}: {value}\r\n" for name, value in fixed.items())
        self.keepalive = keepalive
        self._idle: list[_Connection] = []
        self._busy: set[_Connection] = set()
        self._slots = asyncio.Semaphore(max_connections) if max_connections > 0 else None
        self.closed = False
        self.loop: asyncio.AbstractEventLoop | None = None  # the loop its connections belong to

    async def post(self, path: str, body: bytes) -> Response:
        """POST ``body`` to ``path`` (under the base URL's path); raises :class:`HTTPError`."""
        if self.closed:
            raise HTTPError("the client is closed")
        self.loop = self.loop or asyncio.get_running_loop()
        if self._slots is not None:
            async with self._slots:
                return await self._post(path, body)
        return await self._post(path, body)

    async def _post(self, path: str, body: bytes) -> Response:
        head = (
            f"POST {self.path}{path} HTTP/1.1\r\n{self._fixed}Content-Length: {len(body)}\r\n\r\n"
        ).encode("latin-1")
        connection = self._reuse() or await self._connect()
        self._busy.add(connection)
        waiter: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        try:
            connection.send(head + body, waiter)
            response = await waiter
        except BaseException:  # timeout, cancellation, broken connection: never reuse it
            connection.close()
            raise
        finally:
            self._busy.discard(connection)
        if not connection.closed and not self.closed:
            self._idle.append(connection)
        return response

    def _reuse(self) -> _Connection | None:
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed and now - connection.idle_since < self.keepalive:
                return connection
            connection.close()
        return None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, connection = await loop.create_connection(
                _Connection,
                self.host,
                self.port,
                ssl=self.ssl,
                server_hostname=self.host if self.ssl else None,
            )
        except (OSError, ssl.SSLError) as e:
            raise HTTPError(f"cannot connect to {self.host}:{self.port}: {e}") from None
        return connection

    def close_now(self) -> None:
        """Close every connection at once (also when their event loop is gone)."""
        self.closed = True
        for connection in [*self._idle, *self._busy]:
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                connection.close()
        self._idle.clear()
        self._busy.clear()

    async def aclose(self) -> None:
        self.close_now()
        await asyncio.sleep(0)  # let the transports finish closing

"""One keep-alive HTTP/1.1 connection: sends a request, parses the answer as bytes arrive.

The answer's body may come with ``Content-Length``, chunked, or run until the server
closes; gzip and deflate bodies are decoded. Before its first request a connection may
open a tunnel through a proxy (``CONNECT``); TLS is then started over it by the client.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from dataclasses import dataclass

_HEADER_END = b"\r\n\r\n"


class HTTPError(Exception):
    """The exchange failed below HTTP: no connection, or it broke before a full answer.

    ``retryable`` is False when asking again cannot help (an untrusted certificate, a
    proxy that refuses the tunnel).
    """

    def __init__(self, message: str, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # names in lower case; repeated headers joined with ", "
    body: bytes


def _head(buffer: bytearray) -> tuple[str, int, dict[str, str]] | None:
    """Version, status and headers of the response head at the start of ``buffer``, taken
    out of it; None until the whole head has arrived."""
    end = buffer.find(_HEADER_END)
    if end < 0:
        return None
    lines = buffer[:end].decode("latin-1").split("\r\n")
    del buffer[: end + 4]
    version, status, *_ = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name, value = name.strip().lower(), value.strip()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return version, int(status), headers


class Connection(asyncio.Protocol):
    """One connection; ``send`` one request at a time and await the future it fills."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = time.monotonic()
        self._waiter: asyncio.Future[Response] | None = None
        self._tunnel: asyncio.Future[Response] | None = None
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
        self._buffer += data
        if self._tunnel is not None:
            self._parse_tunnel()
            return
        if self._waiter is None:  # nothing asked: a stray byte makes the connection unusable
            self.close()
            return
        try:
            self._parse()
        except (ValueError, IndexError) as e:
            self.fail(HTTPError(f"malformed response: {e}"))

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
        self.fail(HTTPError(f"server disconnected: {exc}" if exc else "server disconnected"))

    # -- a tunnel through a proxy -------------------------------------------------------

    async def tunnel(self, request: bytes) -> Response:
        """Send a ``CONNECT`` request and return the proxy's answer (its head only)."""
        assert self.transport is not None
        self._tunnel = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        try:
            return await self._tunnel
        finally:
            self._tunnel = None

    def _parse_tunnel(self) -> None:
        assert self._tunnel is not None
        try:
            head = _head(self._buffer)
        except (ValueError, IndexError) as e:
            self.fail(HTTPError(f"malformed answer from the proxy: {e}"))
            return
        if head is not None and not self._tunnel.done():
            self._tunnel.set_result(Response(head[1], head[2], b""))

    # -- parsing ------------------------------------------------------------------------

    def _parse(self) -> None:
        buffer = self._buffer
        while not self._status:
            head = _head(buffer)
            if head is None:
                return
            version, code, headers = head
            if 100 <= code < 200:  # interim answer (100 Continue and the like): skip it
                continue
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
                self.fail(HTTPError(f"undecodable {encoding} body: {e}"))
                return
        response = Response(self._status, self._headers, body)
        if not self._keep_alive or self._buffer:
            self.close()
        waiter, self._waiter = self._waiter, None
        self._reset()
        self.idle_since = time.monotonic()
        if waiter is not None and not waiter.done():
            waiter.set_result(response)

    def fail(self, error: BaseException) -> None:
        """Close the connection; the request waiting on it raises ``error``."""
        self.close()
        for waiter in (self._waiter, self._tunnel):
            if waiter is not None and not waiter.done():
                waiter.set_exception(error)
        self._waiter = None

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

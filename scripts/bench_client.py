"""The load generator's HTTP/1.1 client: a raw asyncio Protocol, keep-alive, one request at
a time per connection.

Why not aiohttp's client: the load generator shares the machine with the proxy and the
fake upstream, and every microsecond it spends per read is a microsecond the direct path
(the denominator of every ratio) cannot go faster. aiohttp's client costs some 20 µs per
read (its parser, a StreamReader, an async iterator step); here a read is one
``data_received`` that appends the bytes, walks the chunk framing it completed and, until
it is found, looks for the first text content. A request is prebuilt bytes, sent with one
write. The body is unframed only after the answer is complete, outside any timing.

``ResponseParser`` is the sans-I/O half (fed bytes in any split, it must agree with itself:
tests/test_bench.py feeds it whole, byte by byte and in random pieces); ``Connection`` the
Protocol around it.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable
from typing import cast


class ResponseParser:
    """One HTTP/1.1 response: the head, then a body framed by Content-Length, by chunks,
    or by the connection's end. Raises ValueError on what is not HTTP."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.status = 0
        self.body_start = -1  # where the body starts in `buffer`, once the head is in
        self.length: int | None = None
        self.chunked = self.until_close = self.done = False
        self.keep_alive = True
        self._pos = 0  # chunked: where the next chunk-size line starts

    @property
    def head_done(self) -> bool:
        return self.body_start >= 0

    def feed(self, data: bytes) -> bool:
        """Take the next bytes; True once the response is complete."""
        self.buffer += data
        if self.body_start < 0:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return False
            self._head(end)
        if self.chunked:
            self._walk()
        elif self.length is not None:
            self.done = len(self.buffer) - self.body_start >= self.length
        return self.done

    def eof(self) -> bool:
        """The connection ended: True when that completes the response."""
        self.done = self.done or (self.until_close and self.head_done)
        return self.done

    def _head(self, end: int) -> None:
        lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        if not version.startswith("HTTP/1.") or not rest[:3].isdigit():
            raise ValueError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
        self.status = int(rest[:3])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip().lower()
        self.keep_alive = headers.get("connection") != "close" and version == "HTTP/1.1"
        self.body_start = self._pos = end + 4
        if "chunked" in headers.get("transfer-encoding", ""):
            self.chunked = True
        elif "content-length" in headers:
            self.length = int(headers["content-length"])
        elif self.status in (204, 304) or 100 <= self.status < 200:
            self.length = 0
        else:
            self.until_close, self.keep_alive = True, False

    def _walk(self) -> None:
        """Step over every chunk complete in the buffer; done at the last (0-size) one."""
        buf, pos = self.buffer, self._pos
        while (eol := buf.find(b"\r\n", pos)) >= 0:
            size = int(bytes(buf[pos:eol]).split(b";", 1)[0], 16)
            if size == 0:  # the last chunk; then trailers, if any, and an empty line
                self.done = buf.find(b"\r\n\r\n", pos) >= 0
                break
            after = eol + 2 + size
            if len(buf) < after + 2:
                break
            if buf[after : after + 2] != b"\r\n":
                raise ValueError("a chunk does not end with CRLF")
            pos = after + 2
        self._pos = pos

    def body(self) -> bytes:
        """The body, unframed (call once done)."""
        raw = bytes(self.buffer[self.body_start :])
        if not self.chunked:
            return raw if self.length is None else raw[: self.length]
        parts, pos = [], 0
        while (eol := raw.find(b"\r\n", pos)) >= 0:
            size = int(raw[pos:eol].split(b";", 1)[0], 16)
            if size == 0:
                break
            parts.append(raw[eol + 2 : eol + 2 + size])
            pos = eol + 4 + size
        return b"".join(parts)


class Exchange:
    """What one request and its answer took; times in seconds from `start`."""

    __slots__ = ("content", "parser", "reads", "start", "total", "ttfb", "ttfc")

    def __init__(self, start: float, content: Callable[[bytes], object]) -> None:
        self.start, self.content = start, content
        self.ttfb = self.ttfc = self.total = 0.0
        self.reads = 0
        self.parser = ResponseParser()


class Connection(asyncio.Protocol):
    """One client connection; `exchange` sends a request and waits for the whole answer."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.current: Exchange | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        ex = self.current
        if ex is None:
            return  # bytes nobody asked for: the next exchange's parser would choke
        now = time.perf_counter() - ex.start
        had_body = ex.parser.head_done
        try:
            done = ex.parser.feed(data)
        except ValueError as exc:
            self._finish(exc)
            return
        if ex.parser.head_done:
            ex.reads += 1
            if not ex.ttfb and (had_body or len(ex.parser.buffer) > ex.parser.body_start):
                ex.ttfb = now
            if not ex.ttfc and ex.content(data):
                ex.ttfc = now
        if done:
            ex.total = now
            self._finish(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost, self.transport = True, None
        ex = self.current
        if ex is not None and ex.parser.eof():
            ex.total = time.perf_counter() - ex.start
            self._finish(None)
        else:
            self._finish(exc or ConnectionResetError("the server closed the connection"))

    def _finish(self, exc: Exception | None) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            if exc is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(exc)

    @property
    def reusable(self) -> bool:
        ex = self.current
        return not self.lost and ex is not None and ex.parser.done and ex.parser.keep_alive

    async def exchange(self, request: bytes, start: float,
                       content: Callable[[bytes], object]) -> Exchange:
        """Send `request` (a whole HTTP/1.1 request) and wait for the whole answer.
        Raises OSError (or ValueError on what is not HTTP) on failure."""
        ex = self.current = Exchange(start, content)
        if self.transport is None:
            raise ConnectionResetError("the connection is closed")
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        await self.waiter
        return ex

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def connect(host: str, port: int, tls: ssl.SSLContext | None = None) -> Connection:
    loop = asyncio.get_running_loop()
    _, conn = await loop.create_connection(Connection, host, port, ssl=tls,
                                           server_hostname=host if tls else None)
    return conn


def wire_request(host: str, port: int, path: str, headers: dict[str, str], body: bytes) -> bytes:
    """A POST as bytes, ready to send."""
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}" if port not in (80, 443)
             else f"Host: {host}", *(
        f"{name}: {value}" for name, value in headers.items()), f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

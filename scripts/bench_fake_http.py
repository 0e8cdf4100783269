"""A minimal HTTP/1.1 server for the benchmark's fake upstreams, on a raw asyncio Protocol.

Why not aiohttp's server: a fake upstream is the denominator of every ratio the benchmark
reports, so it must cost as little as the machine allows. Here a streamed answer is a
list of prebuilt byte strings, each already framed as one HTTP/1.1 chunk
(``<hex size>\\r\\n<frame>\\r\\n``); each is handed to the transport with one ``write``,
nothing is parsed or encoded per chunk, and no coroutine runs per chunk: a stream is a
callback that writes its next chunk and schedules itself again.

One chunk per write, the transport draining: the write buffer's high-water mark is 0, so
a write the kernel does not take whole pauses the stream until the buffer is empty
again, as a real upstream's socket would hold it back from a slow reader. Between
unpaced chunks the writer gives the event loop one turn (``chunk_yield``, the default),
which is what spaces the chunks out on the wire: without it, 200 writes go out back to
back in one turn. Paced chunks wait for a ``Pacer`` tick: one timer per millisecond that
has chunks due, however many streams share it (a thousand streams 20 ms apart cost a
write per chunk, not a timer and a task switch each).

Requests: keep-alive, one at a time per connection (what aiohttp's client sends), a
``Content-Length`` body (a chunked request body is refused with 411, so a client that
sends one fails loudly instead of being measured wrongly). Anything malformed closes the
connection.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

MAX_HEAD = 64 * 1024
MAX_BODY = 64 * 1024 * 1024


@dataclass(frozen=True)
class Stream:
    """A streamed answer: frames (each one HTTP chunk, framed), maybe paced."""

    frames: list[bytes]
    paced_from: int = 0  # frames from this index on go `delay` seconds apart...
    paced_to: int = 0  # ...up to (not including) this one
    delay: float = 0.0


Reply = bytes | Stream  # a whole response, or a stream
Route = Callable[[str, str, bytes], Reply]  # method, path (no query), body


def chunk(data: bytes) -> bytes:
    """`data` framed as one HTTP/1.1 chunk."""
    return b"%x\r\n%s\r\n" % (len(data), data)


LAST_CHUNK = b"0\r\n\r\n"
SSE_HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")


def whole(status: str, content_type: str, body: bytes) -> bytes:
    """A complete response with a Content-Length."""
    head = f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}"
    return head.encode() + b"\r\n\r\n" + body


class Pacer:
    """Runs callbacks at their due time, rounded up to the millisecond: one loop timer per
    millisecond that has something due."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.due: dict[int, list[Callable[[], None]]] = {}

    def at(self, when: float, callback: Callable[[], None]) -> None:
        tick = math.ceil(when * 1000)
        bucket = self.due.get(tick)
        if bucket is None:
            bucket = self.due[tick] = []
            self.loop.call_at(tick / 1000, self._run, tick)
        bucket.append(callback)

    def _run(self, tick: int) -> None:
        for callback in self.due.pop(tick):
            callback()


class Writer:
    """One streamed answer on one connection: writes a chunk, schedules the next."""

    def __init__(self, conn: FakeHTTP, reply: Stream) -> None:
        self.conn, self.reply, self.next = conn, reply, 0
        self.t0 = conn.loop.time()

    def step(self) -> None:
        conn, reply = self.conn, self.reply
        transport = conn.transport
        if transport is None:  # the client went away
            return
        if conn.paused:
            conn.on_drained = self.step
            return
        i = self.next
        if i == len(reply.frames):
            transport.write(LAST_CHUNK)
            conn.finished()
            return
        transport.write(reply.frames[i])
        self.next = i = i + 1
        if reply.paced_from <= i < reply.paced_to:  # a fixed schedule: no drift
            conn.pacer.at(self.t0 + (i - reply.paced_from + 1) * reply.delay, self.step)
        elif conn.chunk_yield:
            conn.loop.call_soon(self.step)
        else:
            self.step()  # at most a few hundred deep: every stream here is short


class FakeHTTP(asyncio.Protocol):
    """One connection: parse requests, answer each through `route`."""

    def __init__(self, route: Route, pacer: Pacer, chunk_yield: bool) -> None:
        self.route, self.pacer, self.chunk_yield = route, pacer, chunk_yield
        self.loop = pacer.loop
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.streaming = self.paused = False
        self.on_drained: Callable[[], None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        self.transport.set_write_buffer_limits(high=0)  # pause on anything left unsent

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        if self.on_drained is not None:
            go, self.on_drained = self.on_drained, None
            go()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.streaming:
            self.next_request()

    def finished(self) -> None:
        self.streaming = False
        self.next_request()  # a request that came while the answer streamed

    def next_request(self) -> None:
        """Answer every complete request in the buffer, stopping at a stream."""
        while self.transport is not None and not self.streaming:
            parsed = self.parse()
            if parsed is None:
                return
            reply = self.route(*parsed)
            if isinstance(reply, bytes):
                self.transport.write(reply)
            else:
                self.streaming = True
                self.transport.write(SSE_HEAD)
                self.loop.call_soon(Writer(self, reply).step)

    def parse(self) -> tuple[str, str, bytes] | None:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > MAX_HEAD:
                self.fail(b"431 Request Header Fields Too Large")
            return None
        lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
        try:
            method, target, _ = lines[0].split(" ", 2)
        except ValueError:
            self.fail(b"400 Bad Request")
            return None
        headers = dict(line.lower().split(":", 1) for line in lines[1:] if ":" in line)
        if "transfer-encoding" in headers:
            self.fail(b"411 Length Required")
            return None
        length = int(headers.get("content-length", "0").strip() or 0)
        if length > MAX_BODY:
            self.fail(b"413 Content Too Large")
            return None
        if len(self.buffer) < end + 4 + length:
            return None
        body = bytes(self.buffer[end + 4 : end + 4 + length])
        del self.buffer[: end + 4 + length]
        return method, target.split("?", 1)[0], body

    def fail(self, status: bytes) -> None:
        if self.transport is not None:
            self.transport.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\n"
                                 b"Connection: close\r\n\r\n")
            self.transport.close()


async def serve(host: str, port: int, route: Route, *, chunk_yield: bool = True,
                backlog: int = 4096) -> None:
    loop = asyncio.get_running_loop()
    pacer = Pacer(loop)
    server = await loop.create_server(lambda: FakeHTTP(route, pacer, chunk_yield), host, port,
                                      backlog=backlog, reuse_address=True)
    async with server:
        await server.serve_forever()

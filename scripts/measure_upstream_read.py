#!/usr/bin/env python3
"""Measure what reading an upstream's streamed body costs through aiohttp's client, against
a raw asyncio Protocol that un-chunks it itself: the lever "a cheaper way to take the
upstream body" of issue 14, item 4, sized before anyone replaces aiohttp's client protocol.

The fake upstream (bench_upstreams.py, a child process on 127.0.0.1) answers the
benchmark's 200-chunk OpenAI stream, each chunk one HTTP/1.1 chunk and one transport
write. Two readers take it, as the proxy's read loop would: a coroutine awaits each read
and gets its payload bytes.

* ``aiohttp``: one shared ClientSession (no cookie jar, as the proxy's), ``POST``, then
  ``await response.content.readany()`` until the end: aiohttp's parser calls
  ``feed_data`` and ``end_http_chunk_receiving`` once per HTTP chunk;
* ``raw``: a keep-alive asyncio Protocol; ``data_received`` walks the chunk framing of
  what arrived with ``bytes.find`` and hands the payloads of one read to the waiting
  coroutine at once (one future per read).

Both check that the payload is the whole stream. Reported per reader: CPU of this process
per stream (``time.process_time``), reads per stream, and streams/s, at concurrency 1 and
64, the readers interleaved round after round.

    .venv/bin/python scripts/measure_upstream_read.py [--streams 1000] [--rounds 2]

Bounded: each run has a deadline; the fake is stopped (by its PID) when done.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import aiohttp

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_procs import free_port, spawn, wait_listening  # noqa: E402
from bench_workload import light_body  # noqa: E402

HOST = "127.0.0.1"
BODY = light_body("openai", "fake-model", True, "hi", 1024)
DEADLINE = 120.0


class RawReader(asyncio.Protocol):
    """One keep-alive connection; un-chunks each response's body as reads arrive."""

    def __init__(self) -> None:
        self.buffer = b""
        self.pending: list[bytes] = []
        self.waiter: asyncio.Future[None] | None = None
        self.in_body = self.ended = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data if self.buffer else data
        at = 0
        if not self.in_body:
            head = buffer.find(b"\r\n\r\n")
            if head < 0:
                self.buffer = buffer
                return
            self.in_body, at = True, head + 4
        while True:
            line = buffer.find(b"\r\n", at)
            if line < 0:
                break
            size = int(buffer[at:line], 16)
            end = line + 2 + size
            if len(buffer) < end + 2:
                break
            if size == 0:
                self.ended, at = True, end + 2
                break
            self.pending.append(buffer[line + 2:end])
            at = end + 2
        self.buffer = buffer[at:]
        if self.waiter is not None and not self.waiter.done() and (self.pending or self.ended):
            self.waiter.set_result(None)

    async def stream(self, request: bytes) -> tuple[int, int]:
        """Send ``request`` and read its answer to the end: (payload bytes, reads)."""
        assert self.transport is not None
        self.in_body = self.ended = False
        self.transport.write(request)
        total = reads = 0
        while True:
            if not self.pending and not self.ended:
                self.waiter = asyncio.get_running_loop().create_future()
                await self.waiter
            if self.pending:
                data = b"".join(self.pending) if len(self.pending) > 1 else self.pending[0]
                self.pending.clear()
                total, reads = total + len(data), reads + 1
            if self.ended and not self.pending:
                return total, reads


async def run_aiohttp(port: int, streams: int, concurrency: int) -> tuple[float, int, int]:
    url = f"http://{HOST}:{port}/v1/chat/completions"
    connector = aiohttp.TCPConnector(limit=1000)
    async with aiohttp.ClientSession(connector=connector,
                                     cookie_jar=aiohttp.DummyCookieJar()) as session:
        async def one() -> tuple[int, int]:
            async with session.post(url, data=BODY,
                                    headers={"content-type": "application/json"}) as resp:
                total = reads = 0
                while data := await resp.content.readany():
                    total, reads = total + len(data), reads + 1
                return total, reads
        return await _drive(one, streams, concurrency)


async def run_raw(port: int, streams: int, concurrency: int) -> tuple[float, int, int]:
    loop = asyncio.get_running_loop()
    request = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(BODY)}\r\n\r\n"
               ).encode() + BODY
    idle: list[RawReader] = []

    async def one() -> tuple[int, int]:
        reader = idle.pop() if idle else (await loop.create_connection(RawReader, HOST, port))[1]
        try:
            return await reader.stream(request)
        finally:
            idle.append(reader)
    try:
        return await _drive(one, streams, concurrency)
    finally:
        for reader in idle:
            if reader.transport is not None:
                reader.transport.close()


async def _drive(one: object, streams: int, concurrency: int) -> tuple[float, int, int]:
    """CPU seconds of this process for ``streams`` answers, their reads, their bytes."""
    left, results = streams, []

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            results.append(await one())  # type: ignore[operator]
    await asyncio.gather(*(worker() for _ in range(min(concurrency, 8))))  # warm up
    left, results = streams, []
    cpu = time.process_time()
    async with asyncio.timeout(DEADLINE):
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    cpu = time.process_time() - cpu
    sizes = {size for size, _ in results}
    assert len(sizes) == 1, f"answers differ in size: {sizes}"
    return cpu, sum(reads for _, reads in results), sizes.pop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    loop_name = type(asyncio.get_running_loop()).__module__.split(".")[0]
    port = free_port()
    fake = spawn("fake-openai", [str(HERE / "bench_upstreams.py"), str(port), "openai"], port)
    try:
        await wait_listening(fake)
        print(f"{loop_name}; {args.streams} streams of 200 chunks per run")
        for rounds in range(args.rounds):
            for concurrency in (1, 64):
                for name, run in (("aiohttp", run_aiohttp), ("raw", run_raw)):
                    start = time.perf_counter()
                    cpu, reads, size = await run(port, args.streams, concurrency)
                    wall = time.perf_counter() - start
                    print(f"round {rounds + 1} c={concurrency:<3} {name:8s} "
                          f"{cpu / args.streams * 1e6:7.1f} us CPU/stream  "
                          f"{reads / args.streams:6.1f} reads/stream  "
                          f"{args.streams / wall:7.0f} streams/s  ({size} bytes each)")
    finally:
        fake.stop()


if __name__ == "__main__":
    try:
        import uvloop
        uvloop.run(main())
    except ImportError:
        asyncio.run(main())

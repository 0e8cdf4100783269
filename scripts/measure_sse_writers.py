#!/usr/bin/env python3
"""Measure aiohttp-sse's ``EventSourceResponse`` against the project's thin SSE writer.

Issue 14, item 4: is the library the design card names worth using on the proxy's own
workload? One aiohttp server (a child process on 127.0.0.1, on uvloop as the proxy runs)
serves the same Anthropic Messages stream several ways, and a raw HTTP/1.1 client
(bench_client.py) drives them at concurrency 1 and 64, the ways interleaved, round after
round. The stream is bench_upstreams.anthropic_stream without its ping: message_start,
content_block_start, 197 text deltas of four words, content_block_stop, message_delta,
message_stop (202 events).

The ways (POST, as the proxy's routes are):

* ``thin-1`` / ``thin-8``: proxy/edge/streaming.py's ``CoalescingResponse`` (headers leave
  with the first body write) and one ``write()`` per batch of prebuilt frames, joined:
  one event a write (what EventSourceResponse can do at best), or eight (one upstream read
  of eight chunks);
* ``sse``: ``aiohttp_sse.sse_response`` as its README shows it, one ``send(data,
  event=name)`` per event, defaults kept (CRLF, a 15 s ping task, a 120 s send timeout);
* ``sse-lean``: the same with ``sep="\\n"`` and ``send_timeout=None`` (no TCP_USER_TIMEOUT,
  no ``asyncio.timeout`` per send): the cheapest the library allows.

Each way is checked once before timing: its body, parsed by proxy/sse.py, must be the same
202 events. Reported per run: streams/s, p50 and p99 total time, the server's CPU per
stream (its own ``getrusage`` before and after, asked over HTTP), bytes on the wire per
stream (head and chunk framing included) and /proc/loadavg when the run ended.

    .venv/bin/python scripts/measure_sse_writers.py [--streams 2000] [--rounds 2]
        [--concurrency 1,64] [--json out.json]

Bounded: every run has a deadline; the server is stopped (by its PID) when done.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import orjson

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
for path in (str(HERE), str(REPO)):
    if path not in sys.path:
        sys.path.insert(0, path)

from bench_client import Connection, connect, wire_request  # noqa: E402
from bench_procs import free_port, spawn, wait_listening  # noqa: E402
from bench_upstreams import anthropic_stream  # noqa: E402

HOST = "127.0.0.1"
WAYS = ("thin-1", "thin-8", "sse", "sse-lean")
RUN_DEADLINE = 300.0  # seconds: a run that takes longer is cut and reported as failed


def frames() -> list[bytes]:
    """The 202 frames: the benchmark's Anthropic stream without its ping."""
    head, body, tail = anthropic_stream()
    return [f for f in head if not f.startswith(b"event: ping")] + body + tail


def events(raw: list[bytes]) -> list[tuple[str, str]]:
    """The frames as (event name, data): what ``EventSourceResponse.send`` takes."""
    out = []
    for frame in raw:
        name, _, data = frame.rstrip(b"\n").partition(b"\n")
        out.append((name[len(b"event: "):].decode(), data[len(b"data: "):].decode()))
    return out


# ----------------------------------------------------------------------------- server


def serve(port: int) -> None:
    import uvloop
    from aiohttp import web
    from aiohttp_sse import sse_response

    from proxy.edge.streaming import SSE_HEADERS, CoalescingResponse

    raw = frames()
    pairs = events(raw)

    async def thin(request: web.Request) -> web.StreamResponse:
        batch = int(request.match_info["batch"])
        await request.read()
        response = CoalescingResponse(headers=SSE_HEADERS)
        await response.prepare(request)
        for at in range(0, len(raw), batch):
            await response.write(b"".join(raw[at:at + batch]))
        await response.write_eof()
        return response

    async def sse(request: web.Request) -> web.StreamResponse:
        await request.read()
        async with sse_response(request, allow_all_methods=True) as response:
            for name, data in pairs:
                await response.send(data, event=name)
        return response

    async def sse_lean(request: web.Request) -> web.StreamResponse:
        await request.read()
        async with sse_response(request, allow_all_methods=True, sep="\n",
                                send_timeout=None) as response:
            for name, data in pairs:
                await response.send(data, event=name)
        return response

    async def usage(_: web.Request) -> web.Response:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        return web.json_response({"cpu": ru.ru_utime + ru.ru_stime})

    app = web.Application()
    app.router.add_post("/thin/{batch}", thin)
    app.router.add_post("/sse", sse)
    app.router.add_post("/sse-lean", sse_lean)
    app.router.add_get("/rusage", usage)
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    web.run_app(app, host=HOST, port=port, print=None, access_log=None, backlog=1024)


# ----------------------------------------------------------------------------- client

PATHS = {"thin-1": "/thin/1", "thin-8": "/thin/8", "sse": "/sse", "sse-lean": "/sse-lean"}
BODY = b'{"model":"m","stream":true,"max_tokens":100,"messages":[]}'


def request_for(port: int, way: str) -> bytes:
    return wire_request(HOST, port, PATHS[way], {"Content-Type": "application/json"}, BODY)


async def server_cpu(port: int) -> float:
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(f"GET /rusage HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
    data = await reader.read()
    writer.close()
    return float(orjson.loads(data.partition(b"\r\n\r\n")[2])["cpu"])


async def one_body(port: int, way: str) -> bytes:
    conn = await connect(HOST, port)
    try:
        ex = await conn.exchange(request_for(port, way), time.perf_counter(), lambda _: False)
    finally:
        conn.close()
    if ex.parser.status != 200:
        raise SystemExit(f"{way}: status {ex.parser.status}")
    return ex.parser.body()


async def check(port: int, way: str, want: list[tuple[str, str]]) -> None:
    from proxy.sse import SSEDecoder

    body = await one_body(port, way)
    got = [(e.event, e.data) for e in SSEDecoder().feed(body)]
    if got != want:
        raise SystemExit(f"{way}: the body is not the expected 202 events")


async def run(port: int, way: str, streams: int, concurrency: int) -> dict[str, Any]:
    request = request_for(port, way)
    conns: list[Connection] = [await connect(HOST, port) for _ in range(concurrency)]
    totals: list[float] = []
    wire: list[int] = []
    left = streams

    async def worker(conn: Connection) -> None:
        nonlocal left
        while left > 0:
            left -= 1
            ex = await conn.exchange(request, time.perf_counter(), lambda _: False)
            if ex.parser.status != 200 or not ex.parser.done:
                raise RuntimeError(f"{way}: a stream failed ({ex.parser.status})")
            totals.append(ex.total)
            wire.append(len(ex.parser.buffer))

    cpu0 = await server_cpu(port)
    t0 = time.perf_counter()
    try:
        await asyncio.wait_for(asyncio.gather(*(worker(c) for c in conns)), RUN_DEADLINE)
    finally:
        for conn in conns:
            conn.close()
    wall = time.perf_counter() - t0
    cpu = await server_cpu(port) - cpu0
    totals.sort()
    return {"way": way, "c": concurrency, "streams": len(totals), "rps": len(totals) / wall,
            "p50_ms": statistics.median(totals) * 1000,
            "p99_ms": totals[int(len(totals) * 0.99) - 1] * 1000,
            "cpu_us": cpu / len(totals) * 1e6, "bytes": statistics.mean(wire),
            "loadavg": Path("/proc/loadavg").read_text().split()[0]}


async def measure(port: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    want = events(frames())
    for way in args.ways:
        await check(port, way, want)
    for way in args.ways:  # warm every path before anything counts
        await run(port, way, 200, 8)
    rows = []
    for round_ in range(1, args.rounds + 1):
        for concurrency in args.concurrency:
            for way in args.ways:
                row = await run(port, way, args.streams, concurrency)
                row["round"] = round_
                rows.append(row)
                print(f"round {round_} c={concurrency:<3} {way:<9} {row['rps']:7.0f}/s "
                      f"p50 {row['p50_ms']:6.2f} ms  cpu {row['cpu_us']:6.0f} µs  "
                      f"{row['bytes']:6.0f} B  load {row['loadavg']}", flush=True)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| c | way | round | streams/s | p50 total ms | p99 total ms | server CPU µs/stream "
             "| bytes/stream | loadavg |", "|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["c"], WAYS.index(r["way"]), r["round"])):
        lines.append(f"| {r['c']} | {r['way']} | {r['round']} | {r['rps']:.0f} | "
                     f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['cpu_us']:.0f} | "
                     f"{r['bytes']:.0f} | {r['loadavg']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--streams", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", default="1,64")
    parser.add_argument("--ways", default=",".join(WAYS))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    args.ways = [w for w in args.ways.split(",") if w]
    if not set(args.ways) <= set(WAYS):
        raise SystemExit(f"ways: {', '.join(WAYS)}")
    port = free_port()
    env = {"PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    child = spawn("sse-server", [__file__, "--serve", str(port)], port, env)
    try:
        import uvloop

        asyncio.run(wait_listening(child))
        rows = uvloop.run(measure(port, args))
    finally:
        child.stop()
    print()
    print(table(rows))
    if args.json:
        args.json.write_bytes(orjson.dumps(rows, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()

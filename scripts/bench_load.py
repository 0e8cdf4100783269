"""The benchmark's load generator: what a request is, how it is sent, timed and checked.

A ``Target`` is one path (direct or proxy) of one direction; a ``Runner`` sends requests to
it over keep-alive connections of its own (bench_client.py) and returns a ``Sample`` per
request. How an answer is checked:

- ``tail`` (latency, throughput): the stream must end with its terminator (``data: [DONE]``
  or ``event: message_stop``); only the last bytes are kept, so checking costs nothing.
- ``full`` (long streams): the whole body is kept and, once the batch is over (outside any
  timing), parsed: every text delta, the stop reason and the terminator must be there, and
  with the built-in fake the text must be exactly the one it sent.
- non-streaming: the JSON answer is parsed and its text and stop reason checked the same way.

Per request it notes the time to the first body bytes (``ttfb``), to the first read holding
text content (``ttfc``: a proxy sends nothing before the model's first text, an upstream
sends its opening frames at once), the total time, and how many reads the body took. A
batch of long streams opens a connection per stream; by default all at the same instant.
"""

from __future__ import annotations

import asyncio
import math
import re
import ssl
import sys
import time
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import NamedTuple
from urllib.parse import urlsplit

import orjson
from bench_client import Connection, Exchange, connect, wire_request

REQUEST_ID = re.compile(r"(req|msg|chatcmpl)_\w+")
TERMINATORS = {"openai": b"data: [DONE]\n\n", "anthropic": b"event: message_stop"}
CONTENT = {"openai": re.compile(rb'"content":\s*"[^"]'), "anthropic": re.compile(rb'"text_delta"')}
CLIENT_PATHS = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages"}


class Target(NamedTuple):
    name: str  # "direct" or "proxy"
    url: str
    body: bytes
    headers: dict[str, str]
    dialect: str  # of the answer
    stream: bool
    expect: str | None  # the whole text, when known (the built-in fake)
    wire: bytes = b""  # the whole request as sent (`target` builds it)
    host: str = ""
    port: int = 0
    tls: ssl.SSLContext | None = None


def target(name: str, url: str, body: bytes, headers: dict[str, str], dialect: str,
           stream: bool, expect: str | None) -> Target:
    """A Target with its request prebuilt."""
    parts = urlsplit(url)
    tls = ssl.create_default_context() if parts.scheme == "https" else None
    host, port = parts.hostname or "127.0.0.1", parts.port or (443 if tls else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    wire = wire_request(host, port, path, headers, body)
    return Target(name, url, body, headers, dialect, stream, expect, wire, host, port, tls)


class Sample(NamedTuple):
    ttfb: float  # seconds to the first body bytes
    total: float
    error: str | None = None
    body: bytes | None = None  # kept for a later check ("full")
    deltas: int = 0  # text deltas seen, once checked
    ttfc: float = 0.0  # seconds to the first read holding text content
    reads: int = 0  # body reads it took (how the bytes arrived, not how they were sent)
    head: bool = True  # the response head arrived; False: the connection was lost before


def request_headers(dialect: str, key: str) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if dialect == "openai":
        return {**headers, "Authorization": f"Bearer {key}"}
    return {**headers, "x-api-key": key, "anthropic-version": "2023-06-01"}


# --- checking answers -----------------------------------------------------------------------------


def check_stream(dialect: str, body: bytes, expect: str | None) -> tuple[str | None, int]:
    """(an error or None, the number of text deltas) for a whole event stream."""
    if b"\r" in body:
        body = body.replace(b"\r\n", b"\n")
    parts: list[str] = []
    stopped = ended = False
    for frame in body.split(b"\n\n"):
        data = next((ln[5:].strip() for ln in frame.split(b"\n") if ln.startswith(b"data:")), None)
        if not data:
            continue
        if data == b"[DONE]":
            ended = True
            continue
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError:
            return f"unparsable event: {data[:80]!r}", len(parts)
        if not isinstance(event, dict):
            return f"not an event object: {data[:80]!r}", len(parts)
        if event.get("error") or event.get("type") == "error":
            return f"error event: {data[:160]!r}", len(parts)
        if dialect == "openai":
            for choice in event.get("choices") or ():
                content = (choice.get("delta") or {}).get("content")
                if content:
                    parts.append(content)
                stopped = stopped or bool(choice.get("finish_reason"))
        elif event.get("type") == "content_block_delta":
            delta = event.get("delta") or {}
            if delta.get("type") == "text_delta":
                parts.append(delta.get("text", ""))
        elif event.get("type") == "message_delta":
            stopped = bool((event.get("delta") or {}).get("stop_reason"))
        elif event.get("type") == "message_stop":
            ended = True
    return verdict(dialect, "".join(parts), stopped, ended, expect), len(parts)


def check_whole(dialect: str, body: bytes, expect: str | None) -> str | None:
    """An error or None for a non-streaming answer."""
    try:
        doc = orjson.loads(body)
        if dialect == "openai":
            choice = doc["choices"][0]
            text, stopped = choice["message"].get("content") or "", choice.get("finish_reason")
        else:
            text = "".join(b.get("text", "") for b in doc["content"] if b.get("type") == "text")
            stopped = doc.get("stop_reason")
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError):
        return f"not a {dialect} answer: {body[:160]!r}"
    return verdict(dialect, text, bool(stopped), True, expect)


def verdict(dialect: str, text: str, stopped: bool, ended: bool, expect: str | None) -> str | None:
    if not ended:
        return f"{dialect} stream ended without {TERMINATORS[dialect]!r}"
    if not stopped:
        return "no stop reason"
    if expect is not None and text != expect:
        return f"text differs: {len(text)} characters, expected {len(expect)}"
    if not text:
        return "no text"
    return None


# --- progress on stderr ---------------------------------------------------------------------------


class Progress:
    """One line on stderr, redrawn a few times a second while a run lasts; only on a TTY."""

    enabled = sys.stderr.isatty()

    def __init__(self, label: str, total: int, seconds: float | None = None) -> None:
        self.label, self.total, self.seconds = label, max(total, 1), seconds
        self.done = 0
        self.started = time.monotonic()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Progress:
        if self.enabled:
            self._task = asyncio.create_task(self._redraw())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()

    def line(self) -> str:
        elapsed = time.monotonic() - self.started
        frac = self.done / self.total
        if self.seconds:  # a batch of long streams: finishes all at once, so show the clock
            frac = max(frac, min(elapsed / self.seconds, 0.99))
        bar = "#" * int(24 * frac)
        return f"{self.label:<36} [{bar:<24}] {self.done}/{self.total} {elapsed:6.1f} s"

    async def _redraw(self) -> None:
        while True:
            sys.stderr.write("\r" + self.line())
            sys.stderr.flush()
            await asyncio.sleep(0.2)


Measure = Callable[[str], AbstractContextManager[None]]


def no_measure(path: str) -> AbstractContextManager[None]:
    return nullcontext()


# --- sending --------------------------------------------------------------------------------------


@dataclass
class Runner:
    """Sends requests over keep-alive connections of its own (bench_client.py), one request
    at a time on each; ends a run early on too many failures or at its deadline."""

    timeout: float  # per request
    max_failures: int
    seconds: float  # per run
    errors: Counter[str] = field(default_factory=Counter)
    deadline: float = math.inf
    progress: Progress | None = None
    idle: dict[tuple[str, int], list[Connection]] = field(default_factory=dict)

    def start(self, progress: Progress | None = None) -> Runner:
        self.deadline = time.monotonic() + self.seconds
        self.progress = progress
        return self

    def close(self) -> None:
        """Close the idle connections."""
        for conns in self.idle.values():
            for conn in conns:
                conn.close()
        self.idle.clear()

    @property
    def exhausted(self) -> bool:
        failed = sum(self.errors.values()) > self.max_failures
        return failed or time.monotonic() > self.deadline

    def note(self, sample: Sample, counted: bool = False) -> Sample:
        if sample.error is not None:
            self.errors[sample.error] += 1
        if self.progress is not None and not counted:
            self.progress.done += 1
        return sample

    async def request(self, target: Target, keep: bool = False) -> Sample:
        return self.note(await self.send(target, keep))

    async def send(self, target: Target, keep: bool = False, fresh: bool = False) -> Sample:
        """One request; `keep`: the whole streamed body, for `check_batch`; `fresh`: on a
        new connection, closed after. A pooled connection the server closed meanwhile is
        replaced once, as any HTTP client does."""
        idle = self.idle.setdefault((target.host, target.port), [])
        conn = None if fresh or not idle else idle.pop()
        start, ex = time.perf_counter(), None
        try:
            async with asyncio.timeout(self.timeout):
                if conn is not None:
                    ex = await self._retried(conn, target, start)
                if ex is None:
                    conn = await connect(target.host, target.port, target.tls)
                    ex = await conn.exchange(target.wire, start, CONTENT[target.dialect].search)
        except (OSError, ValueError, TimeoutError) as exc:
            head = False
            if conn is not None:
                conn.close()
                head = conn.current is not None and conn.current.parser.head_done
            error = f"{target.name}: {type(exc).__name__}: {exc}"[:200]
            return Sample(0.0, 0.0, error, head=head)
        assert conn is not None
        if conn.reusable and not fresh:
            idle.append(conn)
        else:
            conn.close()
        return answer(target, ex, keep)

    async def _retried(self, conn: Connection, target: Target, start: float) -> Exchange | None:
        """The exchange on a pooled connection; None when the server had closed it before
        answering (so a new connection should try)."""
        try:
            return await conn.exchange(target.wire, start, CONTENT[target.dialect].search)
        except OSError:
            if conn.current is not None and conn.current.parser.buffer:
                raise
            conn.close()
            return None

    async def interleaved(self, paths: list[Target], count: int,
                          measure: Measure = no_measure) -> dict[str, list[Sample]]:
        """One request at a time, alternating the paths, the order flipped every round;
        `measure(path)` is entered around each request (outside its timing)."""
        out: dict[str, list[Sample]] = {t.name: [] for t in paths}
        for i in range(count):
            for target in paths if i % 2 == 0 else paths[::-1]:
                with measure(target.name):
                    out[target.name].append(await self.request(target))
            if self.exhausted:
                break
        return out

    async def concurrent(
        self, target: Target, count: int, workers: int
    ) -> tuple[list[Sample], float]:
        """`workers` tasks share `count` requests; returns the samples and the wall time."""
        tickets, out = iter(range(count)), list[Sample]()

        async def worker() -> None:
            for _ in tickets:
                if self.exhausted:
                    return
                out.append(await self.request(target))

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(workers)))
        return out, time.perf_counter() - start

    async def batch(self, target: Target, count: int, spread: float) -> tuple[list[Sample], float]:
        """`count` streams open at once, each on a new connection of its own. Spread 0: a
        burst, every request waits at a barrier until all are ready to connect; else their
        starts spread evenly over `spread` seconds. Each whole answer is checked after the
        last one ends. Returns the samples and the wall time (from the barrier's opening)."""
        gate = asyncio.Event()
        ready = 0

        async def one(i: int) -> Sample:
            nonlocal ready
            ready += 1
            await gate.wait()
            if spread:
                await asyncio.sleep(spread * i / count)
            sample = await self.send(target, keep=True, fresh=True)
            if self.progress is not None:
                self.progress.done += 1
            return sample

        tasks = [asyncio.ensure_future(one(i)) for i in range(count)]
        while ready < count:  # every task at the barrier, nothing connecting yet
            await asyncio.sleep(0)
        start = time.perf_counter()
        gate.set()
        got = await asyncio.gather(*tasks)
        wall = time.perf_counter() - start
        return [self.note(check_batch(target, s), counted=True) for s in got], wall


def answer(target: Target, ex: Exchange, keep: bool) -> Sample:
    """The sample of a complete answer: checked now (tail, or whole for non-streaming),
    or kept for `check_batch`."""
    parser, name = ex.parser, target.name
    if parser.status != 200:
        text = REQUEST_ID.sub(r"\1_*", parser.body().decode(errors="replace"))  # alike ones group
        return Sample(0.0, 0.0, f"HTTP {parser.status}: {text[:200]}")
    if not target.stream:
        error = check_whole(target.dialect, parser.body(), target.expect)
        return Sample(ex.ttfb, ex.total, error and f"{name}: {error}", ttfc=ex.total,
                      reads=ex.reads)
    if keep:
        return Sample(ex.ttfb, ex.total, None, parser.body(), ttfc=ex.ttfc, reads=ex.reads)
    end = TERMINATORS[target.dialect]
    if end not in parser.buffer[-300:]:
        return Sample(ex.ttfb, ex.total, f"{name}: stream ended without {end!r}")
    return Sample(ex.ttfb, ex.total, ttfc=ex.ttfc, reads=ex.reads)


def check_batch(target: Target, sample: Sample) -> Sample:
    """A kept body checked in full, then dropped."""
    if sample.body is None:
        return sample
    error, deltas = check_stream(target.dialect, sample.body, target.expect)
    error = error and f"{target.name}: {error}"
    return sample._replace(error=error, body=None, deltas=deltas)

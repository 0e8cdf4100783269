"""Pumping canonical event batches to a client: as SSE, or collected into one answer.

The commit point: response headers go out only once the backend produced its first batch
of events, so a failure before that is still an honest HTTP error. After it, a failure is
the dialect's in-stream error frame and the stream ends without its terminal event, so the
client knows it was cut. Keep-alive pings go out only after an idle gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import Protocol

from aiohttp import web

from proxy.backends.base import Batches
from proxy.canonical import (
    CollectedMessage,
    Collector,
    Event,
    MessageDelta,
    MessageStop,
    coalesce,
)
from proxy.errors import ProxyError, UpstreamProtocolError
from proxy.keys import OBSERVERS_KEY, TRACE_KEY
from proxy.observe.trace import Trace

log = logging.getLogger("proxy.stream")
SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
               "X-Accel-Buffering": "no"}


class CoalescingResponse(web.StreamResponse):
    """A StreamResponse whose headers leave with its first body write: one packet and one
    client wake-up less per answer. (aiohttp's own ``Response`` buffers them the same way;
    the class attribute is its switch.)"""

    _send_headers_immediately = False


class StreamEncoder(Protocol):
    def encode(self, events: list[Event]) -> bytes: ...


class Sink(Protocol):
    """Where a stream's bytes go: an aiohttp StreamResponse, or a test's list."""

    async def write(self, data: bytes) -> None: ...

    async def write_eof(self, data: bytes = b"") -> None: ...


ErrorFrame = Callable[[str, str], bytes]


class Pinger:
    """Writes a keep-alive after ``interval`` seconds without a write. A timer, not a task:
    it costs nothing per event (writes only stamp ``last_write``) and little per stream.
    An interval of 0 or less turns keep-alives off. While a write is still draining to a
    slow reader (``writing``) the line is not idle, so no ping goes out: one would land
    in the middle of the answer's frames, or after its last."""

    def __init__(self, response: Sink, ping: bytes, interval: float) -> None:
        self.last_write = time.monotonic()
        self.writing = False
        self._response, self._ping, self._interval = response, ping, interval
        self._loop = asyncio.get_running_loop()
        self._timer = self._loop.call_later(interval, self._due) if interval > 0 else None
        self._sending: asyncio.Task[None] | None = None

    def _due(self) -> None:
        idle = time.monotonic() - self.last_write
        if self.writing:
            idle = 0.0
        elif idle >= self._interval and self._sending is None:
            self._sending = self._loop.create_task(self._send(), name="sse-keepalive")
            idle = 0.0
        self._timer = self._loop.call_later(self._interval - idle, self._due)

    async def _send(self) -> None:
        try:
            await self._response.write(self._ping)
        except Exception:  # a closed or finished response: the stream's owner will see it
            return
        finally:
            self._sending = None
        self.last_write = time.monotonic()

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        task = self._sending
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def stream_events(request: web.Request, batches: Batches, encoder: StreamEncoder, *,
                        ping: bytes, interval: float, error_frame: ErrorFrame,
                        headers: Mapping[str, str] | None = None) -> web.StreamResponse:
    """``batches`` come committed (backends/failover.py): the first one is the first real
    content, or the upstream was silent so long that headers and pings should go out."""
    try:
        first = await anext(batches)
    except StopAsyncIteration:
        await batches.aclose()
        raise UpstreamProtocolError("The upstream stream was empty.") from None
    except BaseException:
        await batches.aclose()
        raise
    trace = request[TRACE_KEY]
    response = CoalescingResponse(headers={**SSE_HEADERS, **(headers or {}),
                                           "x-request-id": trace.request_id,
                                           **trace.timing_headers()})
    try:
        await response.prepare(request)
    except BaseException:
        await batches.aclose()
        raise
    trace.ttfb_ms = (time.perf_counter() - trace.started) * 1000
    trace.streamed, trace.status = True, response.status
    active = request.app[OBSERVERS_KEY].metrics.active_streams
    active.inc()
    try:
        await write_stream(response, first, batches, encoder, ping=ping, interval=interval,
                           error_frame=error_frame, trace=trace)
    finally:
        active.dec()
    return response


async def write_stream(sink: Sink, first: list[Event], batches: Batches,
                       encoder: StreamEncoder, *, ping: bytes, interval: float,
                       error_frame: ErrorFrame, trace: Trace) -> None:
    """Encode and write every batch; pings after idle gaps; a failure after the first byte
    becomes the dialect's error frame and the stream ends without its terminal event."""
    pinger = Pinger(sink, ping, interval)
    try:
        await _pump(sink, first, batches, encoder, pinger, trace)
    except ProxyError as exc:
        await pinger.stop()
        trace.errors.append(exc.kind)
        await _write_error(sink, trace, error_frame(exc.kind, exc.message), exc.message)
    except ConnectionError:
        log.info("%s: client went away mid-stream", trace.request_id)
    except Exception:
        log.exception("%s: stream failed", trace.request_id)
        await pinger.stop()
        await _write_error(sink, trace, error_frame("api_error", "The proxy failed "
                                                    "unexpectedly; see its log."), "bug")
    finally:
        await pinger.stop()
        await batches.aclose()


async def _pump(sink: Sink, first: list[Event], batches: Batches, encoder: StreamEncoder,
                pinger: Pinger, trace: Trace) -> None:
    batch: list[Event] | None = first
    while batch is not None:
        _note(trace, batch)
        data = encoder.encode(coalesce(batch))
        finished = isinstance(batch[-1], MessageStop)
        if finished:
            await pinger.stop()  # nothing may follow the terminal event
        pinger.writing = True
        await sink.write(data)
        pinger.writing = False
        if trace.recording is not None:
            trace.record(data)
        pinger.last_write = time.monotonic()
        if finished:
            await sink.write_eof()  # the client is done; the backend may tidy up
            trace.finished = True
            async for _ in batches:
                pass
            return
        batch = await anext(batches, None)
    raise UpstreamProtocolError("The upstream stream ended before it finished.")


async def _write_error(sink: Sink, trace: Trace, frame: bytes, reason: str) -> None:
    log.warning("%s: stream failed after it started: %s", trace.request_id, reason)
    trace.stop_reason = "error"
    trace.record(frame)
    with contextlib.suppress(ConnectionError):
        await sink.write(frame)
        await sink.write_eof()


async def collect_events(request: web.Request, batches: Batches) -> CollectedMessage:
    """The non-streaming answer: the same stream, folded into one message."""
    return await collect(batches, request[TRACE_KEY])


async def collect(batches: Batches, trace: Trace) -> CollectedMessage:
    collector = Collector()
    try:
        async for batch in batches:
            _note(trace, batch)
            collector.feed(batch)
            if collector.message.complete:
                break
    finally:
        await batches.aclose()
    if not collector.message.complete:
        raise UpstreamProtocolError("The upstream stream ended before it finished.")
    trace.answered()  # the wait for the upstream is not the proxy's time
    return collector.message


def _note(trace: Trace, batch: list[Event]) -> None:
    """Keep the stop reason and usage for the access line. Both decoders end a stream with
    MessageDelta then MessageStop in one batch, so only a batch's tail needs a look."""
    if len(batch) < 2 or not isinstance(batch[-1], MessageStop):
        return
    delta = batch[-2]
    if isinstance(delta, MessageDelta):
        trace.stop_reason, trace.usage = delta.stop_reason, delta.usage

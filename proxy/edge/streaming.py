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
from collections.abc import AsyncIterator, Callable
from typing import Protocol

from aiohttp import web

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
from proxy.observe.trace import OVERHEAD_HEADER

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


class Pinger:
    """Writes a keep-alive after ``interval`` seconds without a write. A timer, not a task:
    it costs nothing per event (writes only stamp ``last_write``) and little per stream.
    An interval of 0 or less turns keep-alives off."""

    def __init__(self, response: web.StreamResponse, ping: bytes, interval: float) -> None:
        self.last_write = time.monotonic()
        self._response, self._ping, self._interval = response, ping, interval
        self._loop = asyncio.get_running_loop()
        self._timer = self._loop.call_later(interval, self._due) if interval > 0 else None
        self._sending: asyncio.Task[None] | None = None

    def _due(self) -> None:
        idle = time.monotonic() - self.last_write
        if idle >= self._interval and self._sending is None:
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


async def stream_events(request: web.Request, batches: AsyncIterator[list[Event]],
                        encoder: StreamEncoder, *, ping: bytes, interval: float,
                        error_frame: Callable[[str, str], bytes]) -> web.StreamResponse:
    """``batches`` come committed (backends/failover.py): the first one is the first real
    content, or the upstream was silent so long that headers and pings should go out."""
    try:
        first = await anext(batches)
    except StopAsyncIteration:
        raise UpstreamProtocolError("The upstream stream was empty.") from None
    trace = request[TRACE_KEY]
    response = CoalescingResponse(headers={**SSE_HEADERS, "x-request-id": trace.request_id,
                                           OVERHEAD_HEADER: f"{trace.overhead_ms():.2f}"})
    await response.prepare(request)
    trace.ttfb_ms = (time.perf_counter() - trace.started) * 1000
    trace.streamed = True
    pinger = Pinger(response, ping, interval)
    active = request.app[OBSERVERS_KEY].metrics.active_streams
    active.inc()
    try:
        await _pump(request, response, first, batches, encoder, pinger)
    except ProxyError as exc:
        await pinger.stop()
        trace.errors.append(exc.kind)
        await _write_error(request, response, error_frame(exc.kind, exc.message), exc.message)
    except ConnectionError:
        log.info("%s: client went away mid-stream", request[TRACE_KEY].request_id)
    except Exception:
        log.exception("%s: stream failed", request[TRACE_KEY].request_id)
        await pinger.stop()
        await _write_error(request, response, error_frame("api_error", "The proxy failed "
                                                          "unexpectedly; see its log."), "bug")
    finally:
        active.dec()
        await pinger.stop()
        await batches.aclose()  # type: ignore[attr-defined]
    return response


async def _pump(request: web.Request, response: web.StreamResponse, first: list[Event],
                batches: AsyncIterator[list[Event]], encoder: StreamEncoder,
                pinger: Pinger) -> None:
    batch: list[Event] | None = first
    trace = request[TRACE_KEY]
    while batch is not None:
        _note(request, batch)
        data = encoder.encode(coalesce(batch))
        await response.write(data)
        if trace.recording is not None:
            trace.record(data)
        pinger.last_write = time.monotonic()
        if isinstance(batch[-1], MessageStop):
            await pinger.stop()
            await response.write_eof()  # the client is done; the backend may tidy up
            trace.status, trace.finished = response.status, True
            async for _ in batches:
                pass
            return
        batch = await anext(batches, None)
    raise UpstreamProtocolError("The upstream stream ended before it finished.")


async def _write_error(request: web.Request, response: web.StreamResponse, frame: bytes,
                       reason: str) -> None:
    log.warning("%s: stream failed after it started: %s", request[TRACE_KEY].request_id, reason)
    trace = request[TRACE_KEY]
    trace.stop_reason = "error"
    trace.record(frame)
    with contextlib.suppress(ConnectionError):
        await response.write(frame)
        await response.write_eof()


async def collect_events(request: web.Request,
                         batches: AsyncIterator[list[Event]]) -> CollectedMessage:
    """The non-streaming answer: the same stream, folded into one message."""
    collector = Collector()
    try:
        async for batch in batches:
            _note(request, batch)
            collector.feed(batch)
            if collector.message.complete:
                break
    finally:
        await batches.aclose()  # type: ignore[attr-defined]
    if not collector.message.complete:
        raise UpstreamProtocolError("The upstream stream ended before it finished.")
    request[TRACE_KEY].answered()  # the wait for the upstream is not the proxy's time
    return collector.message


def _note(request: web.Request, batch: list[Event]) -> None:
    """Keep the stop reason and usage for the access line. Both decoders end a stream with
    MessageDelta then MessageStop in one batch, so only a batch's tail needs a look."""
    if len(batch) < 2 or not isinstance(batch[-1], MessageStop):
        return
    delta = batch[-2]
    if isinstance(delta, MessageDelta):
        trace = request[TRACE_KEY]
        trace.stop_reason, trace.usage = delta.stop_reason, delta.usage

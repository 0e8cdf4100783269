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
from proxy.keys import REQUEST_ID_KEY, STARTED_KEY, STOP_REASON_KEY, TTFB_MS_KEY, USAGE_KEY

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
    response = CoalescingResponse(headers=SSE_HEADERS)
    await response.prepare(request)
    request[TTFB_MS_KEY] = (time.perf_counter() - request[STARTED_KEY]) * 1000
    pinger = Pinger(response, ping, interval)
    try:
        await _pump(request, response, first, batches, encoder, pinger)
    except ProxyError as exc:
        await pinger.stop()
        await _write_error(request, response, error_frame(exc.kind, exc.message), exc.message)
    except ConnectionError:
        log.info("%s: client went away mid-stream", request.get(REQUEST_ID_KEY))
    except Exception:
        log.exception("%s: stream failed", request.get(REQUEST_ID_KEY))
        await pinger.stop()
        await _write_error(request, response, error_frame("api_error", "The proxy failed "
                                                          "unexpectedly; see its log."), "bug")
    finally:
        await pinger.stop()
        await batches.aclose()  # type: ignore[attr-defined]
    return response


async def _pump(request: web.Request, response: web.StreamResponse, first: list[Event],
                batches: AsyncIterator[list[Event]], encoder: StreamEncoder,
                pinger: Pinger) -> None:
    batch: list[Event] | None = first
    while batch is not None:
        _note(request, batch)
        await response.write(encoder.encode(coalesce(batch)))
        pinger.last_write = time.monotonic()
        if isinstance(batch[-1], MessageStop):
            await pinger.stop()
            await response.write_eof()  # the client is done; the backend may tidy up
            async for _ in batches:
                pass
            return
        batch = await anext(batches, None)
    raise UpstreamProtocolError("The upstream stream ended before it finished.")


async def _write_error(request: web.Request, response: web.StreamResponse, frame: bytes,
                       reason: str) -> None:
    log.warning("%s: stream failed after it started: %s", request.get(REQUEST_ID_KEY), reason)
    request[STOP_REASON_KEY] = "error"
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
    return collector.message


def _note(request: web.Request, batch: list[Event]) -> None:
    """Keep the stop reason and usage for the access line. Both decoders end a stream with
    MessageDelta then MessageStop in one batch, so only a batch's tail needs a look."""
    if len(batch) < 2 or not isinstance(batch[-1], MessageStop):
        return
    delta = batch[-2]
    if isinstance(delta, MessageDelta):
        request[STOP_REASON_KEY] = delta.stop_reason
        usage = delta.usage
        request[USAGE_KEY] = (f"in={usage.input_tokens}+{usage.cache_read_input_tokens}cached"
                            f",out={usage.output_tokens}")

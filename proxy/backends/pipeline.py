"""The one read loop every byte-stream backend shares.

    bytes (an HTTP body, a child's stdout) ──▶ framing (SSE, NDJSON) ──▶ the upstream
    dialect's decoder ──▶ event filters ──▶ batches of canonical events

One place for what each backend used to repeat: the finish grace (an upstream that said
it finished but never closes must not hold the client's answer, peers.md 3), the tail
read once the decoder saw the end (so an HTTP connection can be reused), failures held
until the events before them are handed over, and filters flushed when a stream fails.
The loop is one async generator with nothing nested inside it: it runs once per
upstream read, on the hot path.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from proxy.backends.base import Batches
from proxy.canonical import Event
from proxy.dialects.stream_decoding import Frame
from proxy.errors import ProxyError
from proxy.filters import EventFilter


class ByteSource(Protocol):
    async def read(self) -> bytes:
        """The next bytes; b"" at the end."""
        ...

    async def finished(self) -> None:
        """The decoder saw the end: tidy up (read what is left, within a bound)."""
        ...


class Framing(Protocol):
    def frames(self, chunk: bytes) -> Sequence[Frame]: ...

    @property
    def truncated(self) -> bool: ...


class Decoder(Protocol):
    done: bool

    @property
    def failed(self) -> bool: ...

    @property
    def finishing(self) -> bool: ...

    def feed(self, frames: Sequence[Frame]) -> list[Event]: ...

    def finish(self, *, truncated: bool = False) -> list[Event]: ...


Opened = ByteSource | list[Event]  # an open stream, or a whole answer already decoded
Opener = Callable[[contextlib.AsyncExitStack], Awaitable[Opened]]


async def decoded(opener: Opener, framing: Framing, decoder: Decoder,
                  filters: Sequence[EventFilter] = (), *, grace: float,
                  failures: Callable[[], contextlib.AbstractContextManager[None]]
                  = contextlib.nullcontext) -> Batches:
    """Open the source (``opener`` holds it in the stack, closed when this ends), then
    read, frame, decode and filter until the decoder is done. ``failures`` turns the
    source's own exceptions into ``proxy.errors`` (aiohttp's, for HTTP backends)."""
    with failures():
        async with contextlib.AsyncExitStack() as stack:
            opened = await opener(stack)
            del opener  # and with it the request it rendered: nothing needs it now
            if isinstance(opened, list):  # e.g. a JSON answer to a streaming request
                events = _through(filters, opened)
                if events:
                    yield events
                return
            read = opened.read
            while chunk := await (_within(read(), grace) if decoder.finishing else read()):
                try:
                    events = decoder.feed(framing.frames(chunk))
                except ProxyError:
                    if held := _flushed(filters):
                        yield held
                    raise
                for event_filter in filters:
                    events = event_filter.feed(events)
                if events:
                    yield events
                if decoder.failed:
                    break
                if decoder.done:
                    await opened.finished()
                    return
            try:
                events = decoder.finish(truncated=framing.truncated and not decoder.finishing)
            except ProxyError:
                if held := _flushed(filters):
                    yield held
                raise
            events = _through(filters, events)
            if events:
                yield events


def _through(filters: Sequence[EventFilter], events: list[Event]) -> list[Event]:
    for event_filter in filters:
        events = event_filter.feed(events)
    return events


def _flushed(filters: Sequence[EventFilter]) -> list[Event]:
    """What the filters still held when the stream failed: still the client's."""
    held: list[Event] = []
    for event_filter in filters:
        held = event_filter.feed(held) + event_filter.finish()
    return held


async def _within(read: Awaitable[bytes], grace: float) -> bytes:
    """Once the model said it finished, the end may take ``grace`` seconds at most."""
    try:
        return await asyncio.wait_for(read, grace)
    except TimeoutError:
        return b""

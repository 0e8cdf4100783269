"""The one read loop: bytes → framing → decoder → filters → batches, with a test filter
that drops thinking blocks and renumbers the rest; the finish grace, the tail read, and
what filters held when a stream fails. No ports: the byte source is a list."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Awaitable, Callable

import pytest

from proxy.backends.pipeline import Opened, decoded
from proxy.canonical import (
    BlockStart,
    BlockStop,
    Collector,
    Event,
    MessageStop,
    SignatureDelta,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
)
from proxy.dialects.openai.stream_decode import OpenAIStreamDecoder
from proxy.errors import UpstreamStreamError
from proxy.sse import SSEDecoder
from tests.fakes.openai_upstream import error_chunk, text_stream
from tests.support import fixture, splits


class DropThinking:
    """Hides thinking blocks; later blocks are renumbered so indexes stay dense."""

    def __init__(self) -> None:
        self._map: dict[int, int] = {}
        self._dropped: set[int] = set()
        self._next = 0

    def feed(self, events: list[Event]) -> list[Event]:
        out: list[Event] = []
        for event in events:
            index = getattr(event, "index", None)
            if isinstance(event, BlockStart):
                if event.kind == "thinking":
                    self._dropped.add(event.index)
                    continue
                self._map[event.index], self._next = self._next, self._next + 1
            if index is None:
                out.append(event)
            elif index not in self._dropped:
                out.append(dataclasses.replace(event, index=self._map[index]))  # type: ignore[type-var]
        return out

    def finish(self) -> list[Event]:
        return []


class HoldAll:
    """Holds every event until MessageStop: what a sniffer deciding slowly looks like."""

    def __init__(self) -> None:
        self.held: list[Event] = []

    def feed(self, events: list[Event]) -> list[Event]:
        self.held += events
        if self.held and isinstance(self.held[-1], MessageStop):
            out, self.held = self.held, []
            return out
        return []

    def finish(self) -> list[Event]:
        out, self.held = self.held, []
        return out


class ListSource:
    def __init__(self, chunks: list[bytes], *, hang: bool = False) -> None:
        self._chunks = list(chunks)
        self._hang = hang
        self.tidied = False

    async def read(self) -> bytes:
        if self._chunks:
            return self._chunks.pop(0)
        if self._hang:
            await asyncio.Event().wait()
        return b""

    async def finished(self) -> None:
        self.tidied = True


def decoder() -> OpenAIStreamDecoder:
    return OpenAIStreamDecoder(message_id="m", model="x", input_tokens=1)


async def run(source: ListSource, *filters: object, grace: float = 5.0) -> list[list[Event]]:
    async def opener(stack: contextlib.AsyncExitStack) -> Opened:
        return source

    return [b async for b in decoded(opener, SSEDecoder(), decoder(), filters,  # type: ignore[arg-type]
                                     grace=grace)]


def collected(batches: list[list[Event]]) -> tuple[object, ...]:
    collector = Collector()
    for batch in batches:
        collector.feed(batch)
    message = collector.message
    return tuple((b.kind, b.text, repr(b.tool_input)) for b in message.blocks) + (
        message.stop_reason, message.complete)


async def test_a_filter_drops_and_renumbers_blocks_the_same_for_any_split() -> None:
    raw = fixture("openai/reasoning.sse")
    outcomes = set()
    for chunks in splits(raw):
        batches = await run(ListSource(chunks), DropThinking())
        events = [e for b in batches for e in b]
        assert not any(isinstance(e, ThinkingDelta | SignatureDelta) for e in events)
        indexes = [e.index for e in events if isinstance(e, BlockStart)]
        assert indexes == list(range(len(indexes)))
        outcomes.add(collected(batches))
    assert len(outcomes) == 1
    (only,) = outcomes
    assert only[0][0] == "text" and only[-1] is True  # type: ignore[index]


async def test_the_tail_is_read_once_the_decoder_is_done() -> None:
    source = ListSource(text_stream(["a", "b"]))
    batches = await run(source)
    assert isinstance(batches[-1][-1], MessageStop) and source.tidied


async def test_an_upstream_that_never_closes_after_finishing_gets_a_grace_only() -> None:
    chunks = text_stream(["a"], with_done=False)[:-1]  # the finish chunk, no usage, no [DONE]
    batches = await asyncio.wait_for(run(ListSource(chunks, hang=True), grace=0.05), 5)
    assert isinstance(batches[-1][-1], MessageStop)


async def test_what_a_filter_held_is_handed_over_before_the_failure() -> None:
    chunks = text_stream(["kept ", "text"])[:3] + [error_chunk("boom")]
    held = HoldAll()
    seen: list[list[Event]] = []
    with pytest.raises(UpstreamStreamError):
        async for batch in decoded(_opener(ListSource(chunks)), SSEDecoder(), decoder(),
                                   (held,), grace=5.0):
            seen.append(batch)
    text = "".join(e.text for b in seen for e in b if isinstance(e, TextDelta))
    assert text == "kept text"


async def test_a_whole_answer_from_the_opener_goes_through_the_filters() -> None:
    whole: list[Event] = [BlockStart(0, "thinking"), ThinkingDelta(0, "t"), BlockStop(0),
                          BlockStart(1, "tool_use", "t1", "f"), ToolArgsDelta(1, "{}"),
                          BlockStop(1)]

    async def opener(stack: contextlib.AsyncExitStack) -> Opened:
        return whole

    batches = [b async for b in decoded(opener, SSEDecoder(), decoder(), (DropThinking(),),
                                        grace=1.0)]
    assert batches == [[BlockStart(0, "tool_use", "t1", "f"), ToolArgsDelta(0, "{}"),
                        BlockStop(0)]]


def _opener(source: ListSource) -> Callable[[contextlib.AsyncExitStack], Awaitable[Opened]]:
    async def opener(stack: contextlib.AsyncExitStack) -> Opened:
        return source
    return opener

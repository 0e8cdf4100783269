"""The canonical model's two functions: coalescing a batch, and collecting a stream."""

from __future__ import annotations

from proxy.canonical import (
    BlockStart,
    BlockStop,
    Collector,
    Event,
    MessageDelta,
    MessageStart,
    MessageStop,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
    Usage,
    coalesce,
)
from tests.fakes.openai_upstream import tool_calls_stream
from tests.support import splits, transcode_openai

STREAM: list[Event] = [
    MessageStart("m", "x", Usage(input_tokens=3)),
    BlockStart(0, "thinking"), ThinkingDelta(0, "a"), ThinkingDelta(0, "b"), BlockStop(0),
    BlockStart(1, "text"), TextDelta(1, "he"), TextDelta(1, "llo"), TextDelta(1, "!"),
    BlockStop(1),
    BlockStart(2, "tool_use", "t1", "f"), ToolArgsDelta(2, '{"a"'), ToolArgsDelta(2, ": 1}"),
    BlockStop(2),
    MessageDelta("tool_use", Usage(input_tokens=3, output_tokens=4)), MessageStop(),
]


def test_coalesce_joins_adjacent_deltas_of_one_block_only() -> None:
    assert coalesce(STREAM) == [
        STREAM[0], STREAM[1], ThinkingDelta(0, "ab"), STREAM[4], STREAM[5],
        TextDelta(1, "hello!"), STREAM[9], STREAM[10], ToolArgsDelta(2, '{"a": 1}'),
        STREAM[13], STREAM[14], STREAM[15]]
    assert coalesce(STREAM[6:8]) == STREAM[6:8]  # short batches pass as they are


def test_coalesced_batches_collect_to_the_same_message() -> None:
    raw = b"".join(tool_calls_stream([("c0", "f", ['{"x"', ": 1}"]), ("c1", "g", ["{}"])],
                                     interleave=True, text_before="Hm, let me see."))
    for chunks in splits(raw):
        plain, coalesced = Collector(), Collector()
        sse_events, _, error = transcode_openai(chunks)
        assert error is None
        plain.feed(sse_events)
        coalesced.feed(coalesce(sse_events))
        assert plain.message == coalesced.message


def test_collector_builds_the_message() -> None:
    collector = Collector()
    collector.feed(STREAM)
    message = collector.message
    assert message.complete and message.stop_reason == "tool_use"
    assert [(b.kind, b.text) for b in message.blocks[:2]] == [("thinking", "ab"),
                                                               ("text", "hello!")]
    assert message.blocks[2].tool_input == {"a": 1}
    assert message.usage.output_tokens == 4

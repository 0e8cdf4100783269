"""The Anthropic SSE encoder writes the exact frames and refuses a broken grammar."""

from __future__ import annotations

import orjson
import pytest

from proxy.canonical import (
    BlockStart,
    BlockStop,
    Event,
    MessageDelta,
    MessageStart,
    MessageStop,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
    Usage,
)
from proxy.dialects.anthropic.stream_encode import AnthropicStreamEncoder, error_frame
from tests.support import check_anthropic_stream, parse_anthropic_sse


def test_frames_have_event_lines_and_the_sdk_shapes() -> None:
    events: list[Event] = [
        MessageStart("msg_1", "claude-x", Usage(input_tokens=42)),
        BlockStart(0, "thinking"), ThinkingDelta(0, "hm"), BlockStop(0),
        BlockStart(1, "text"), TextDelta(1, "hi \u2028"), BlockStop(1),
        BlockStart(2, "tool_use", "toolu_1", "Bash"), ToolArgsDelta(2, '{"c'),
        ToolArgsDelta(2, 'ommand": "ls"}'), BlockStop(2),
        MessageDelta("tool_use", Usage(input_tokens=40, output_tokens=9,
                                       cache_read_input_tokens=2)),
        MessageStop(),
    ]
    raw = AnthropicStreamEncoder().encode(events)
    frames = parse_anthropic_sse(raw)
    check_anthropic_stream(frames)
    start = frames[0][1]["message"]
    assert start["usage"]["input_tokens"] == 42 and start["model"] == "claude-x"
    assert frames[1][1]["content_block"] == {"type": "thinking", "thinking": "", "signature": ""}
    tool = frames[7][1]["content_block"]
    assert tool == {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {}}
    final = frames[-2][1]
    assert final["usage"] == {"input_tokens": 40, "cache_creation_input_tokens": 0,
                              "cache_read_input_tokens": 2, "output_tokens": 9}
    assert raw.endswith(b'event: message_stop\ndata: {"type":"message_stop"}\n\n')


@pytest.mark.parametrize("events", [
    [BlockStart(0, "text"), TextDelta(1, "x")],            # delta for a block not open
    [BlockStart(1, "text")],                                # index skipped
    [BlockStart(0, "text"), BlockStart(1, "text")],         # two blocks open
    [TextDelta(0, "x")],                                    # delta before any block
    [BlockStart(0, "text"), MessageDelta("end_turn", Usage())],  # delta with a block open
])
def test_a_broken_grammar_raises(events: list[Event]) -> None:
    encoder = AnthropicStreamEncoder()
    with pytest.raises(AssertionError):
        encoder.encode(events)


def test_error_frame() -> None:
    raw = error_frame("overloaded", "busy")
    assert raw.startswith(b"event: error\n")
    body = orjson.loads(raw.split(b"data: ", 1)[1])
    assert body == {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}

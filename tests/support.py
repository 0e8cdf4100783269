"""Test helpers shared by the transcoder and end-to-end tests.

* ``splits``: the same bytes whole, one byte at a time, and in random pieces (h11's trick);
* ``transcode_openai``: recorded OpenAI stream bytes -> canonical events -> Anthropic SSE;
* ``check_anthropic_stream``: a validator of the Anthropic event grammar (protocols.md 1.5)
  that every translated stream in the suite goes through.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import orjson

from proxy.canonical import Event
from proxy.dialects.anthropic.stream_encode import AnthropicStreamEncoder
from proxy.dialects.openai.stream_decode import OpenAIStreamDecoder
from proxy.sse import SSEDecoder, SSEEvent

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def splits(data: bytes, seeds: int = 5) -> list[list[bytes]]:
    """Whole, byte by byte, and ``seeds`` random splittings of ``data``."""
    ways = [[data], [data[i:i + 1] for i in range(len(data))]]
    for seed in range(seeds):
        rng = random.Random(seed)
        cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(1, 40))))
        ways.append([data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)])
    return ways


def decode_sse(chunks: list[bytes]) -> tuple[list[SSEEvent], bool]:
    decoder = SSEDecoder()
    events = [event for chunk in chunks for event in decoder.feed(chunk)]
    return events, decoder.truncated


def transcode_openai(chunks: list[bytes], *, input_tokens: int = 100,
                     tool_names: dict[str, str] | None = None
                     ) -> tuple[list[Event], bytes, Exception | None]:
    """Feed OpenAI stream bytes chunk by chunk; return events, Anthropic SSE bytes, and the
    exception that ended the stream, if one did."""
    sse = SSEDecoder()
    decoder = OpenAIStreamDecoder(message_id="msg_test", model="client-model",
                                  input_tokens=input_tokens, tool_names=tool_names)
    encoder = AnthropicStreamEncoder()
    events: list[Event] = []
    out = bytearray()
    try:
        for chunk in chunks:
            batch = decoder.feed(sse.feed(chunk))
            events += batch
            out += encoder.encode(batch)
            if decoder.done or decoder.failed:
                break
        if not decoder.done:
            batch = decoder.finish(truncated=sse.truncated)
            events += batch
            out += encoder.encode(batch)
    except Exception as exc:  # the test decides which exceptions are right
        return events, bytes(out), exc
    return events, bytes(out), None


def parse_anthropic_sse(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    events, truncated = decode_sse([raw])
    assert not truncated, "the stream ended inside a frame"
    parsed = []
    for event in events:
        assert event.event is not None, f"frame without an event: line: {event.data[:80]}"
        data = orjson.loads(event.data)
        assert data["type"] == event.event, (event.event, data["type"])
        parsed.append((event.event, data))
    return parsed


def check_anthropic_stream(frames: list[tuple[str, dict[str, Any]]], *,
                           complete: bool = True) -> None:
    """Assert the Anthropic event grammar; ``complete=False`` for streams cut by an error,
    which must then end with ``error`` and never carry ``message_stop``."""
    names = [name for name, _ in frames if name != "ping"]
    assert names and names[0] == "message_start", names[:3]
    start = frames[0][1]["message"]
    assert start["content"] == [] and start["stop_reason"] is None
    assert isinstance(start["usage"]["input_tokens"], int)
    open_index, next_index, kinds = None, 0, {}
    for name, data in frames[1:]:
        if name == "content_block_start":
            assert open_index is None and data["index"] == next_index, (open_index, data)
            open_index, next_index = data["index"], next_index + 1
            kinds[open_index] = data["content_block"]["type"]
            if kinds[open_index] == "tool_use":
                assert data["content_block"]["input"] == {}
        elif name == "content_block_delta":
            assert data["index"] == open_index, ("delta outside its block", data)
            allowed = {"text": {"text_delta"}, "thinking": {"thinking_delta", "signature_delta"},
                       "tool_use": {"input_json_delta"}}[kinds[open_index]]
            assert data["delta"]["type"] in allowed, data
        elif name == "content_block_stop":
            assert data["index"] == open_index
            open_index = None
        elif name == "message_delta":
            assert open_index is None, "message_delta inside a block"
            assert isinstance(data["usage"]["output_tokens"], int)
            assert data["delta"]["stop_reason"] in {"end_turn", "max_tokens", "stop_sequence",
                                                    "tool_use", "pause_turn", "refusal"}
    if complete:
        assert names[-2:] == ["message_delta", "message_stop"], names[-3:]
        assert names.count("message_delta") == 1
    else:
        assert names[-1] == "error" and "message_stop" not in names, names[-3:]

"""Upstreams that break their own stream grammar: an answer with no content at all,
Anthropic blocks that overlap or deltas for blocks that are not open, and parallel tool
calls whose long arguments arrive interleaved. Each is a protocol error that says what
happened, or (for the last) a correct answer in time linear in its size."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest

from proxy.canonical import BlockStart, Collector, MessageDelta, MessageStart, MessageStop
from proxy.dialects import json_progress
from proxy.dialects.anthropic.stream_decode import AnthropicStreamDecoder
from proxy.dialects.openai import stream_decode
from proxy.dialects.openai.stream_decode import OpenAIStreamDecoder
from proxy.errors import UpstreamProtocolError
from proxy.sse import SSEDecoder
from tests.dialects.pipeline import run_decoder
from tests.fakes.anthropic_upstream import frame as anthropic_frame
from tests.support import splits


def openai_decoder() -> OpenAIStreamDecoder:
    return OpenAIStreamDecoder(message_id="msg_1", model="client-model", input_tokens=3)


def anthropic_decoder() -> AnthropicStreamDecoder:
    return AnthropicStreamDecoder(message_id="msg_1", model="client-model", input_tokens=3)


def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
    return json.dumps({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})


ROLE = chunk({"role": "assistant", "content": ""})
USAGE = json.dumps({"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 0}})

# ------------------------------------------------------------- an answer with no content


@pytest.mark.parametrize("frames", [
    ["[DONE]"],
    [USAGE, "[DONE]"],
    [ROLE, "[DONE]"],
    [ROLE, chunk({}, "stop"), USAGE, "[DONE]"],
    [chunk({}, "stop"), "[DONE]"],
    [ROLE, chunk({"content": ""}, "stop"), "[DONE]"],
    [ROLE, chunk({}, "tool_calls"), "[DONE]"],
], ids=["done-only", "usage-only", "role-only", "role-finish-usage", "finish-only",
        "empty-text", "tool-calls-without-calls"])
def test_an_openai_stream_with_no_content_is_a_protocol_error(frames: list[str]) -> None:
    for feeds in ([frames], [[f] for f in frames]):
        events, error = run_decoder(openai_decoder(), feeds)
        assert isinstance(error, UpstreamProtocolError), events
        assert "without any content" in error.message
        assert events == []  # not even a message_start the client would have to take back


@pytest.mark.parametrize("reason", ["length", "content_filter"])
def test_an_openai_answer_whose_finish_explains_no_content_is_an_answer(reason: str) -> None:
    events, error = run_decoder(openai_decoder(), [[ROLE, chunk({}, reason), USAGE, "[DONE]"]])
    assert error is None
    assert isinstance(events[0], MessageStart) and events[0].id == "msg_1"
    assert events[1] == MessageDelta({"length": "max_tokens", "content_filter": "refusal"}[reason],
                                     events[1].usage)  # type: ignore[union-attr]
    assert events[2:] == [MessageStop()]


def test_a_whole_openai_completion_with_no_content_is_a_protocol_error() -> None:
    body = {"id": "x", "choices": [{"index": 0, "finish_reason": "stop",
                                    "message": {"role": "assistant", "content": ""}}]}
    with pytest.raises(UpstreamProtocolError, match="without any content"):
        openai_decoder().feed_completion(body)


def test_message_start_comes_first_even_when_the_first_chunk_is_usage() -> None:
    frames = [USAGE, chunk({"content": "Hi"}), chunk({}, "stop"), "[DONE]"]
    events, error = run_decoder(openai_decoder(), [frames])
    assert error is None
    assert isinstance(events[0], MessageStart) and isinstance(events[1], BlockStart)


@pytest.mark.parametrize("frames", [
    [{"type": "message_stop"}],
    [{"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {}},
     {"type": "message_stop"}],
    [{"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}],
], ids=["stop-only", "delta-and-stop", "block-first"])
def test_an_anthropic_stream_without_message_start_is_a_protocol_error(
        frames: list[dict[str, Any]]) -> None:
    events, error = run_decoder(anthropic_decoder(), [[json.dumps(f) for f in frames]])
    assert isinstance(error, UpstreamProtocolError) and "before message_start" in error.message
    assert events == []


def test_an_anthropic_answer_of_no_blocks_is_still_an_answer() -> None:
    # The API itself can answer so (a prefill that was already complete).
    frames = [{"type": "message_start", "message": {"usage": {"input_tokens": 5}}},
              {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
               "usage": {"output_tokens": 0}},
              {"type": "message_stop"}]
    events, error = run_decoder(anthropic_decoder(), [[json.dumps(f) for f in frames]])
    assert error is None and [type(e) for e in events] == [MessageStart, MessageDelta,
                                                           MessageStop]


# ------------------------------------------------- overlapping Anthropic upstream blocks

START = {"type": "message_start", "message": {"usage": {"input_tokens": 5}}}


def text_start(index: int) -> dict[str, Any]:
    return {"type": "content_block_start", "index": index,
            "content_block": {"type": "text", "text": ""}}


def text_delta(index: int, text: str = "x") -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index,
            "delta": {"type": "text_delta", "text": text}}


def stop(index: int) -> dict[str, Any]:
    return {"type": "content_block_stop", "index": index}


@pytest.mark.parametrize(("frames", "said"), [
    ([START, text_start(0), text_delta(0), text_start(1), text_delta(1), stop(1), stop(0)],
     "started block 1 while block 0 was still open"),
    ([START, text_start(0), text_delta(1)],
     "content_block_delta for block 1, which is not open"),
    ([START, text_start(0), stop(0), text_delta(0)],
     "content_block_delta for block 0, which is not open"),
    ([START, text_start(0), stop(1)], "content_block_stop for block 1, which is not open"),
    ([START, text_start(0), stop(0), text_start(0)], "started block 0 twice"),
    ([START, text_start(0), {"type": "message_delta", "delta": {"stop_reason": "end_turn"}}],
     "message_delta while block 0 was still open"),
    ([START, text_start(0), {"type": "content_block_delta", "index": 0,
                             "delta": {"type": "input_json_delta", "partial_json": "{}"}}],
     "input_json_delta in block 0, a text block"),
    ([START, START], "a second message_start"),
    ([START, text_start(-1), text_delta(-1), {"type": "message_stop"}],
     "content_block_start without a block index"),
], ids=["overlap", "delta-elsewhere", "delta-after-stop", "stop-elsewhere", "restart",
        "end-inside-block", "delta-of-another-kind", "two-starts", "negative-index"])
def test_overlapping_anthropic_blocks_are_a_protocol_error_that_says_so(
        frames: list[dict[str, Any]], said: str) -> None:
    raw = b"".join(anthropic_frame(f) for f in frames)
    for chunks in splits(raw):
        sse = SSEDecoder()
        events, error = run_decoder(anthropic_decoder(), [sse.frames(c) for c in chunks])
        assert isinstance(error, UpstreamProtocolError), events  # and events are a valid prefix
        assert said in error.message


# ------------------------------------------- long interleaved arguments: linear, correct


class CountingLoads:
    """orjson.loads as the decoder module sees it, counting the calls (observes only)."""

    def __init__(self) -> None:
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(orjson, name)

    def loads(self, data: Any) -> Any:
        self.calls += 1
        return orjson.loads(data)


def interleaved_calls(size: int, piece: int) -> tuple[list[str], list[dict[str, Any]]]:
    """Two tool calls of ``size`` characters of arguments each, sent as alternating
    fragments of ``piece`` characters, many of them ending in "}" (which once meant a
    parse of everything so far)."""
    args = [{"items": [{"n": i, "s": "x}" * 3} for i in range(size // 25)]} for _ in range(2)]
    texts = [json.dumps(a) for a in args]
    assert min(len(t) for t in texts) >= size
    frames = [chunk({"tool_calls": [{"index": i, "id": f"call_{i}", "type": "function",
                                     "function": {"name": f"f{i}", "arguments": ""}}]})
              for i in range(2)]
    for at in range(0, max(len(t) for t in texts), piece):
        for i, text in enumerate(texts):
            if text[at:at + piece]:
                frames.append(chunk({"tool_calls": [{"index": i, "function": {
                    "arguments": text[at:at + piece]}}]}))
    return [*frames, chunk({}, "tool_calls"), USAGE, "[DONE]"], args


def test_long_interleaved_tool_arguments_are_parsed_a_bounded_number_of_times(
        monkeypatch: pytest.MonkeyPatch) -> None:
    frames, args = interleaved_calls(400_000, 20)
    counting = CountingLoads()
    for module in (stream_decode, json_progress):  # where arguments are parsed, not frames
        monkeypatch.setattr(module, "orjson", counting)
    events, error = run_decoder(openai_decoder(), [frames[i:i + 50]
                                                   for i in range(0, len(frames), 50)])
    monkeypatch.undo()
    assert error is None
    collector = Collector()
    collector.feed(events)
    assert [b.tool_input for b in collector.message.blocks] == args
    assert [b.tool_name for b in collector.message.blocks] == ["f0", "f1"]
    assert counting.calls <= 2  # once per call, when it closes

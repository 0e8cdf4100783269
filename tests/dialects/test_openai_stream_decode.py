"""OpenAI stream -> canonical events -> Anthropic SSE, fed whole, bytewise and in random
splits; every output passes the Anthropic grammar check and is byte-identical across
splits."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from proxy.canonical import (
    BlockStart,
    CollectedMessage,
    Collector,
    MessageDelta,
    ToolArgsDelta,
)
from proxy.dialects.openai.stream_decode import OpenAIStreamDecoder
from proxy.errors import UpstreamProtocolError, UpstreamStreamError
from proxy.sse import SSEDecoder
from tests.fakes.openai_upstream import chat_completion, sse, text_stream, tool_calls_stream
from tests.support import (
    check_anthropic_stream,
    fixture,
    parse_anthropic_sse,
    splits,
    transcode_openai,
)


def collect(raw: bytes) -> tuple[CollectedMessage, bytes]:
    """Transcode every split; assert they agree and pass the grammar; return the result."""
    results = [transcode_openai(chunks) for chunks in splits(raw)]
    first_events, first_bytes, error = results[0]
    assert error is None, error
    for events, out, err in results[1:]:
        assert err is None and out == first_bytes
    check_anthropic_stream(parse_anthropic_sse(first_bytes))
    collector = Collector()
    collector.feed(first_events)
    return collector.message, first_bytes


def blocks(message: CollectedMessage) -> list[tuple[str, Any]]:
    return [(b.kind, b.tool_input if b.kind == "tool_use" else b.text) for b in message.blocks]


def test_text() -> None:
    message, _ = collect(fixture("openai/text.sse"))
    assert blocks(message) == [("text", "Hello, world!")]
    assert message.stop_reason == "end_turn" and message.model == "client-model"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (12, 4)


@pytest.mark.parametrize("name", ["openai/reasoning.sse", "openai/reasoning_vllm.sse"])
def test_reasoning_becomes_a_thinking_block(name: str) -> None:
    message, _ = collect(fixture(name))
    assert [b.kind for b in message.blocks] == ["thinking", "text"]
    assert message.blocks[0].text and message.blocks[1].text == "2 + 2 = 4."


@pytest.mark.parametrize("name", ["openai/parallel_tools.sse",
                                  "openai/parallel_tools_interleaved.sse"])
def test_parallel_tool_calls_get_their_own_blocks(name: str) -> None:
    message, _ = collect(fixture(name))
    assert blocks(message) == [
        ("tool_use", {"city": "Paris", "unit": "c"}),
        ("tool_use", {"city": "Tokyo", "unit": "c"}),
    ]
    assert [b.tool_id for b in message.blocks] == ["call_paris01", "call_tokyo02"]
    assert message.stop_reason == "tool_use"
    assert message.usage.cache_read_input_tokens == 8
    assert message.usage.input_tokens == 40 - 8


def test_text_then_tool() -> None:
    message, _ = collect(fixture("openai/text_then_tool.sse"))
    assert blocks(message) == [("text", "Let me compute that."),
                               ("tool_use", {"a": 2, "b": 2})]


@pytest.mark.parametrize("name", ["openai/crlf_multiline.sse", "openai/u2028.sse"])
def test_odd_framing(name: str) -> None:
    message, out = collect(fixture(name))
    assert message.stop_reason == "end_turn"
    if "u2028" in name:
        assert "\u2028" in message.blocks[0].text and "\u2029" in message.blocks[0].text
    else:
        assert message.blocks[0].text == "Hi there"


def test_arguments_stream_live_even_when_calls_interleave() -> None:
    """Call 0's fragments go out as they come; call 1 waits only while call 0 is open."""
    chunks = tool_calls_stream([("c0", "f", ['{"a"', ': 1', "}"]), ("c1", "g", ['{"b"', ": 2}"])],
                               interleave=True)
    sse_decoder = SSEDecoder()
    decoder = OpenAIStreamDecoder(message_id="m", model="x", input_tokens=1)
    seen = []
    for chunk in chunks:
        seen.append(decoder.feed(sse_decoder.frames(chunk)))
    first_fragment_at = next(i for i, b in enumerate(seen)
                             if any(isinstance(e, ToolArgsDelta) and e.partial_json == '{"a"'
                                    for e in b))
    assert first_fragment_at < len(chunks) - 3  # long before the end of the stream
    starts = [e for b in seen for e in b if isinstance(e, BlockStart)]
    assert [(s.index, s.tool_id) for s in starts] == [(0, "c0"), (1, "c1")]


def test_sequential_calls_stream_the_second_live_too() -> None:
    chunks = tool_calls_stream([("c0", "f", ['{"a": 1}']), ("c1", "g", ['{"b"', ": 2}"])])
    sse_decoder = SSEDecoder()
    decoder = OpenAIStreamDecoder(message_id="m", model="x", input_tokens=1)
    per_chunk = [decoder.feed(sse_decoder.frames(c)) for c in chunks]
    where = [i for i, b in enumerate(per_chunk)
             for e in b if isinstance(e, ToolArgsDelta) and e.partial_json == '{"b"']
    assert where and where[0] < len(chunks) - 3


def test_an_error_frame_mid_stream_raises_after_the_text_so_far() -> None:
    for chunks in splits(fixture("openai/error_midstream.sse")):
        events, out, error = transcode_openai(chunks)
        assert isinstance(error, UpstreamStreamError)
        assert "server had an error" in error.message
        assert b"Partial" in out and b"message_stop" not in out


def test_a_cut_stream_is_an_error_never_a_finished_message() -> None:
    for chunks in splits(fixture("openai/truncated.sse")):
        _, out, error = transcode_openai(chunks)
        assert isinstance(error, UpstreamProtocolError)
        assert b"message_stop" not in out


def test_a_frame_that_is_not_json_is_an_error() -> None:
    raw = text_stream(["ok"])[0] + b"data: {not json\n\n"
    _, _, error = transcode_openai([raw])
    assert isinstance(error, UpstreamProtocolError)


def test_done_without_finish_reason_ends_the_turn() -> None:
    message, _ = collect(b"".join(text_stream(["a"], finish_reason=None, usage=None)))
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == 100  # the estimate stands in for missing usage


@pytest.mark.parametrize(("finish", "stop"), [
    ("length", "max_tokens"), ("content_filter", "refusal"), ("stop", "end_turn")])
def test_finish_reasons(finish: str, stop: str) -> None:
    message, _ = collect(b"".join(text_stream(["a"], finish_reason=finish)))
    assert message.stop_reason == stop


def test_a_tool_call_reported_as_stop_still_says_tool_use() -> None:
    raw = b"".join(tool_calls_stream([("c0", "f", ['{"a": 1}'])], finish_reason="stop"))
    message, _ = collect(raw)
    assert message.stop_reason == "tool_use"


def test_empty_arguments_become_an_empty_object() -> None:
    message, out = collect(b"".join(tool_calls_stream([("c0", "f", [])])))
    assert blocks(message) == [("tool_use", {})]
    assert b'"partial_json":"{}"' in out


def test_long_tool_names_are_restored() -> None:
    raw = b"".join(tool_calls_stream([("c0", "short_abc123", ['{}'])]))
    events, _, _ = transcode_openai([raw], tool_names={"short_abc123": "mcp__" + "x" * 80})
    assert [e.tool_name for e in events if isinstance(e, BlockStart)] == ["mcp__" + "x" * 80]


def _chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    return sse({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})


def test_all_calls_on_index_zero_with_new_ids_are_kept_apart() -> None:
    raw = b"".join([
        _chunk({"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f", "arguments": "{}"}}]}),
        _chunk({"tool_calls": [{"index": 0, "id": "b", "function": {"name": "g", "arguments": "{}"}}]}),
        _chunk({}, "tool_calls"), b"data: [DONE]\n\n"])
    message, _ = collect(raw)
    assert [b.tool_id for b in message.blocks] == ["a", "b"]


def test_one_chunk_with_reasoning_text_and_tool_keeps_all_three_in_order() -> None:
    raw = b"".join([
        _chunk({"reasoning_content": "hm", "content": "ok", "tool_calls": [
            {"index": 0, "id": "t", "function": {"name": "f", "arguments": '{"x": 1}'}}]},
            "tool_calls"),
        b"data: [DONE]\n\n"])
    message, _ = collect(raw)
    assert blocks(message) == [("thinking", "hm"), ("text", "ok"), ("tool_use", {"x": 1})]


def test_deepseek_cache_hit_usage() -> None:
    usage = {"prompt_tokens": 50, "completion_tokens": 5, "prompt_cache_hit_tokens": 30}
    raw = _chunk({"content": "a"}, "stop") + sse({"choices": [], "usage": usage})
    message, _ = collect(raw)
    assert (message.usage.input_tokens, message.usage.cache_read_input_tokens) == (20, 30)


def test_stream_ends_at_the_usage_chunk_without_waiting_for_done() -> None:
    chunks = text_stream(["a"])
    decoder = OpenAIStreamDecoder(message_id="m", model="x", input_tokens=1)
    sse_decoder = SSEDecoder()
    for chunk in chunks[:-1]:  # everything but [DONE]
        decoder.feed(sse_decoder.frames(chunk))
    assert decoder.done


def test_a_whole_completion_is_streamed_as_events() -> None:
    body = chat_completion("Hi", finish_reason="tool_calls",
                           tool_calls=[("c1", "f", '{"q": "x"}')], reasoning_content="think")
    decoder = OpenAIStreamDecoder(message_id="m", model="x", input_tokens=1)
    events = decoder.feed_completion(orjson.loads(orjson.dumps(body)))
    collector = Collector()
    collector.feed(events)
    assert blocks(collector.message) == [("thinking", "think"), ("text", "Hi"),
                                         ("tool_use", {"q": "x"})]
    assert any(isinstance(e, ToolArgsDelta) for e in events)
    assert isinstance(events[-2], MessageDelta)


def _call(index: int | None, args: str, call_id: str | None = None,
          name: str | None = None) -> dict[str, Any]:
    piece: dict[str, Any] = {"function": {"arguments": args}}
    if index is not None:
        piece["index"] = index
    if call_id:
        piece.update(id=call_id, type="function")
        piece["function"]["name"] = name or "f"
    return piece


def _calls_stream(*pieces: dict[str, Any]) -> bytes:
    chunks = [_chunk({"tool_calls": [p]}) for p in pieces]
    return b"".join([*chunks, _chunk({}, "tool_calls"), b"data: [DONE]\n\n"])


def test_interleaved_calls_whose_arguments_never_parse_still_end_cleanly() -> None:
    # Call 0 has no arguments at all, so nothing proves it finished before the end.
    raw = _calls_stream(_call(0, "", "call_0", "list_files"), _call(1, "", "call_1", "read"),
                        _call(2, "", "call_2", "read"), _call(1, '{"path":"a"}'),
                        _call(2, '{"path":"b"}'))
    message, _ = collect(raw)
    assert blocks(message) == [("tool_use", {}), ("tool_use", {"path": "a"}),
                               ("tool_use", {"path": "b"})]
    assert message.stop_reason == "tool_use"


def test_every_call_on_index_zero_keeps_its_own_fragments() -> None:
    raw = _calls_stream(_call(0, "", "call_a", "f"), _call(0, '{"x":1}'),
                        _call(0, "", "call_b", "g"), _call(0, '{"y":2}'))
    message, _ = collect(raw)
    assert [(b.tool_id, b.tool_name, b.tool_input) for b in message.blocks] == [
        ("call_a", "f", {"x": 1}), ("call_b", "g", {"y": 2})]


def test_calls_without_an_index_follow_their_ids() -> None:
    raw = _calls_stream(_call(None, '{"x"', "call_a", "f"), _call(None, ": 1}", "call_a", "f"),
                        _call(None, "{}", "call_b", "g"))
    message, _ = collect(raw)
    assert [(b.tool_id, b.tool_input) for b in message.blocks] == [("call_a", {"x": 1}),
                                                                   ("call_b", {})]


@pytest.mark.parametrize("frame", [
    {"choices": [None]}, {"choices": [{"index": 0, "delta": "hi"}]},
    {"choices": [{"index": 0, "delta": {"tool_calls": {"index": 0}}}]},
    {"choices": [{"index": 0, "delta": {"tool_calls": [None]}}]},
    {"choices": {"index": 0}}, {"usage": [1]},
    {"choices": [{"index": 0, "delta": {}, "finish_reason": {"x": 1}}]},
])
def test_malformed_frames_are_protocol_errors_not_crashes(frame: dict[str, Any]) -> None:
    raw = text_stream(["ok"])[0] + sse(frame)
    _, _, error = transcode_openai([raw])
    assert isinstance(error, UpstreamProtocolError)


def test_a_second_choice_never_joins_the_answer() -> None:
    raw = b"".join([_chunk({"content": "A"}),
                    sse({"choices": [{"index": 1, "delta": {"content": "B"}}]}),
                    _chunk({}, "stop"), b"data: [DONE]\n\n"])
    message, _ = collect(raw)
    assert blocks(message) == [("text", "A")]


def test_a_surrogate_pair_cut_across_chunks_does_not_kill_the_stream() -> None:
    raw = b"".join([b'data: {"choices":[{"index":0,"delta":{"content":"a\\ud83d"}}]}\n\n',
                    b'data: {"choices":[{"index":0,"delta":{"content":"\\ude00b"}}]}\n\n',
                    _chunk({}, "stop"), b"data: [DONE]\n\n"])
    message, _ = collect(raw)
    assert message.blocks[0].text == "a\ufffd\ufffdb"


def test_a_json_error_body_with_status_200_is_an_error() -> None:
    decoder = OpenAIStreamDecoder(message_id="m", model="x", input_tokens=1)
    with pytest.raises(UpstreamStreamError, match="Rate limit"):
        decoder.feed_completion({"error": {"message": "Rate limit exceeded", "code": 429}})
    with pytest.raises(UpstreamProtocolError):
        OpenAIStreamDecoder(message_id="m", model="x", input_tokens=1).feed_completion({})


def test_finish_reason_tool_calls_without_a_call_ends_the_turn() -> None:
    message, _ = collect(b"".join(text_stream(["done"], finish_reason="tool_calls")))
    assert message.stop_reason == "end_turn"

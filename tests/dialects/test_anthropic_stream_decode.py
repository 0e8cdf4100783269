"""Anthropic stream -> canonical events -> OpenAI chunks, fed whole, bytewise and in random
splits; every output passes the OpenAI chunk grammar and is byte-identical across splits."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from proxy.canonical import BlockStart, Collector, SignatureDelta
from proxy.dialects.anthropic.stream_decode import AnthropicStreamDecoder
from proxy.dialects.openai import stream_encode
from proxy.errors import UpstreamProtocolError, UpstreamStreamError
from tests.fakes.anthropic_upstream import (
    PING,
    blocks_stream,
    error_event,
    frame,
    message,
    redacted_thinking_block,
    text_block,
    text_stream,
    thinking_block,
    tool_use_block,
)
from tests.support import (
    check_openai_stream,
    decode_sse,
    fixture,
    splits,
    transcode_anthropic,
)

SIGNATURE = "EqQBCgIYAhIM1gbc"


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """``created`` comes from the clock; freeze it so splits compare byte for byte."""
    monkeypatch.setattr(stream_encode, "time", SimpleNamespace(time=lambda: 1_741_570_283.0))


def transcode_all(raw: bytes, **kwargs: Any) -> tuple[list[Any], bytes, Exception | None]:
    """Every split of ``raw``: same bytes out, same kind of failure; the first result."""
    results = [transcode_anthropic(chunks, **kwargs) for chunks in splits(raw)]
    events, out, error = results[0]
    for _, other_out, other_error in results[1:]:
        assert other_out == out
        assert type(other_error) is type(error)
    return events, out, error


def answer(raw: bytes, *, complete: bool = True, include_usage: bool = True) -> dict[str, Any]:
    """What an OpenAI client accumulates from the stream (after the grammar check)."""
    chunks = check_openai_stream(raw, complete=complete, include_usage=include_usage)
    out: dict[str, Any] = {"content": "", "reasoning": "", "calls": [], "finish": None,
                           "usage": None}
    for chunk in chunks:
        if not chunk["choices"]:
            out["usage"] = chunk["usage"]
            continue
        choice = chunk["choices"][0]
        delta = choice["delta"]
        out["content"] += delta.get("content") or ""
        out["reasoning"] += delta.get("reasoning_content") or ""
        for call in delta.get("tool_calls") or ():
            if call["index"] == len(out["calls"]):
                out["calls"].append({"id": call["id"], "name": call["function"]["name"],
                                     "arguments": "", "pieces": []})
            piece = call["function"].get("arguments", "")
            out["calls"][call["index"]]["arguments"] += piece
            if piece:
                out["calls"][call["index"]]["pieces"].append(piece)
        out["finish"] = choice.get("finish_reason") or out["finish"]
    return out


def ok(name: str, **kwargs: Any) -> tuple[dict[str, Any], bytes]:
    _, out, error = transcode_all(fixture(f"anthropic/{name}.sse"), **kwargs)
    assert error is None, error
    return answer(out, **kwargs), out


def usage(prompt: int, completion: int, cached: int = 0, written: int = 0) -> dict[str, Any]:
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached, "cache_write_tokens": written}}


# ---------------------------------------------------------------------------- fixtures


def test_text() -> None:
    got, out = ok("text")
    assert got["content"] == "Hello, world!" and got["reasoning"] == ""
    assert got["finish"] == "stop" and got["calls"] == []
    assert got["usage"] == usage(12, 6)
    assert b'"model":"client-model"' in out and b'"id":"chatcmpl-test"' in out


def test_thinking_becomes_reasoning_content_and_the_signature_is_dropped() -> None:
    got, out = ok("thinking")
    assert got["reasoning"] == "The user asks 2+2. That is 4."
    assert got["content"] == "2 + 2 = 4."
    assert SIGNATURE.encode() not in out and b"signature" not in out
    events, _, _ = transcode_anthropic([fixture("anthropic/thinking.sse")])
    signatures = [e for e in events if isinstance(e, SignatureDelta)]
    assert signatures and signatures[0].signature.startswith(SIGNATURE)  # canonical keeps it


def test_tool_use_after_text() -> None:
    got, _ = ok("tool_use")
    assert got["content"] == "I'll check the weather." and got["finish"] == "tool_calls"
    (call,) = got["calls"]
    assert (call["id"], call["name"]) == ("toolu_01NRLabsLyVHZPKxbKvkfSMn", "get_weather")
    assert call["pieces"] == ['{"locati', 'on": "Paris"}']  # the empty first fragment skipped
    assert json.loads(call["arguments"]) == {"location": "Paris"}
    assert got["usage"] == usage(377, 65)


def test_parallel_tools_each_get_their_own_index_and_fragments() -> None:
    got, _ = ok("parallel_tools")
    assert got["content"] == "" and got["finish"] == "tool_calls"
    assert [(c["id"], c["name"]) for c in got["calls"]] == [
        ("toolu_01Paris0000000000000001", "get_weather"),
        ("toolu_01Tokyo0000000000000002", "get_weather")]
    assert [json.loads(c["arguments"]) for c in got["calls"]] == [
        {"city": "Paris", "unit": "c"}, {"city": "Tokyo", "unit": "c"}]
    assert [len(c["pieces"]) for c in got["calls"]] == [3, 3]
    # prompt_tokens counts cached and cache-written tokens, as OpenAI does
    assert got["usage"] == usage(40 + 200 + 50, 80, cached=200, written=50)


def test_redacted_thinking_is_skipped() -> None:
    got, out = ok("redacted_thinking")
    assert got["content"] == "Done." and got["reasoning"] == ""
    assert b"EmwK" not in out
    events, _, _ = transcode_anthropic([fixture("anthropic/redacted_thinking.sse")])
    assert [(e.index, e.kind) for e in events if isinstance(e, BlockStart)] == [(0, "text")]


def test_skipped_blocks_leave_block_and_tool_indexes_dense() -> None:
    raw = b"".join(blocks_stream([
        redacted_thinking_block("EmwKAAA"), tool_use_block("toolu_a", "f", ["", '{"a": 1}']),
        redacted_thinking_block("EmwKBBB"), text_block(["mid"]),
        tool_use_block("toolu_b", "g", ["", '{"b"', ": 2}"])], "tool_use"))
    events, out, error = transcode_all(raw)
    assert error is None
    assert [(e.index, e.kind) for e in events if isinstance(e, BlockStart)] == [
        (0, "tool_use"), (1, "text"), (2, "tool_use")]
    got = answer(out)
    assert [(c["id"], json.loads(c["arguments"])) for c in got["calls"]] == [
        ("toolu_a", {"a": 1}), ("toolu_b", {"b": 2})]
    assert got["content"] == "mid"


def test_refusal_is_content_filter() -> None:
    got, _ = ok("refusal")
    assert got["content"] == "I can't help with that." and got["finish"] == "content_filter"


def test_crlf() -> None:
    got, _ = ok("crlf")
    assert got["content"] == "Hi there" and got["usage"] == usage(6, 2)


def test_no_usage_chunk_unless_asked() -> None:
    for name in ("text", "parallel_tools"):
        got, out = ok(name, include_usage=False)
        assert got["usage"] is None and b'"choices":[]' not in out and b"usage" not in out


def test_an_error_event_mid_stream_fails_after_the_text_so_far() -> None:
    _, out, error = transcode_all(fixture("anthropic/error_midstream.sse"))
    assert isinstance(error, UpstreamStreamError)
    assert (error.kind, error.status, error.message) == ("overloaded", 529, "Overloaded")
    got = answer(out, complete=False)
    assert got["content"] == "Partial answer" and got["finish"] is None


def test_a_cut_stream_is_a_protocol_error() -> None:
    _, out, error = transcode_all(fixture("anthropic/truncated.sse"))
    assert isinstance(error, UpstreamProtocolError)
    assert answer(out, complete=False)["content"] == "Once upon a"


def test_a_stream_that_ends_between_frames_is_still_cut() -> None:
    raw = b"".join(text_stream(["a", "b"])[:-2])  # no message_delta, no message_stop
    _, out, error = transcode_all(raw)
    assert isinstance(error, UpstreamProtocolError)
    assert answer(out, complete=False)["content"] == "ab"


@pytest.mark.parametrize(("kind", "status", "canonical"), [
    ("overloaded_error", 529, "overloaded"), ("rate_limit_error", 429, "rate_limit"),
    ("api_error", 500, "api_error"), ("something_new", 500, "api_error")])
def test_error_kinds(kind: str, status: int, canonical: str) -> None:
    raw = b"".join(text_stream(["x"])[:4]) + error_event(kind, "boom")
    _, out, error = transcode_all(raw)
    assert isinstance(error, UpstreamStreamError)
    assert (error.status, error.kind, error.message) == (status, canonical, "boom")
    answer(out, complete=False)


def test_an_error_before_any_output_raises_at_once() -> None:
    decoder = AnthropicStreamDecoder(message_id="m", model="x", input_tokens=1)
    events, _ = decode_sse([error_event()])
    with pytest.raises(UpstreamStreamError):
        decoder.feed([e.data for e in events])


def test_a_frame_that_is_not_json_is_a_protocol_error() -> None:
    raw = text_stream(["ok"])[0] + b"event: content_block_delta\ndata: {not json\n\n"
    _, out, error = transcode_all(raw)
    assert isinstance(error, UpstreamProtocolError)
    answer(out, complete=False)


@pytest.mark.parametrize(("stop", "finish"), [
    ("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"),
    ("tool_use", "tool_calls"), ("pause_turn", "stop"), ("refusal", "content_filter"),
    ("model_context_window_exceeded", "length")])
def test_stop_reasons(stop: str, finish: str) -> None:
    _, out, error = transcode_all(b"".join(text_stream(["a"], stop)))
    assert error is None and answer(out)["finish"] == finish


def test_pings_unknown_events_and_unknown_deltas_are_ignored() -> None:
    frames = text_stream(["a", "b"])
    extra = [PING, frame({"type": "some_new_event", "x": 1}),
             frame({"type": "content_block_delta", "index": 0, "delta": {
                 "type": "citations_delta", "citation": {"type": "char_location"}}})]
    raw = b"".join([*frames[:3], *extra, *frames[3:]])
    _, out, error = transcode_all(raw)
    assert error is None and answer(out)["content"] == "ab"


def test_full_usage_in_message_delta_wins() -> None:
    raw = b"".join(text_stream(["a"], usage=(30, 7, 11, 5), full_delta_usage=True))
    _, out, _ = transcode_all(raw)
    assert answer(out)["usage"] == usage(30 + 11 + 5, 7, cached=11, written=5)


def test_a_tool_without_arguments_still_sends_a_json_object() -> None:
    # The real API streams a no-argument call as one input_json_delta with partial_json "".
    # proxy bug: the arguments then concatenate to "", which json.loads rejects (and the
    # non-streaming answer says "{}" for the same call).
    raw = b"".join(blocks_stream([tool_use_block("toolu_n", "now", [""])], "tool_use"))
    _, out, error = transcode_all(raw)
    assert error is None
    (call,) = answer(out)["calls"]
    assert json.loads(call["arguments"]) == {}


def test_created_is_the_same_on_every_chunk_even_across_a_second(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # proxy bug: the usage chunk reads the clock again, so a stream longer than a second
    # ends with a different "created" than the chunks before it.
    clock = iter(range(1_741_570_283, 1_741_570_383))
    monkeypatch.setattr(stream_encode, "time", SimpleNamespace(time=lambda: float(next(clock))))
    _, out, _ = transcode_anthropic([fixture("anthropic/text.sse")])
    check_openai_stream(out)


# --------------------------------------------------------------------- whole messages


def collected(events: list[Any]) -> Any:
    collector = Collector()
    collector.feed(events)
    return collector.message


def test_a_whole_message_collects_like_the_equivalent_stream() -> None:
    content: list[dict[str, Any]] = [{"type": "thinking", "thinking": "Let me see.", "signature": "sig123"},
               {"type": "text", "text": "Checking."},
               {"type": "redacted_thinking", "data": "EmwK"},
               {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                "input": {"city": "Paris"}}]
    whole = AnthropicStreamDecoder(message_id="m1", model="client-model", input_tokens=9)
    from_message = collected(whole.feed_message(
        message(content, "tool_use", (30, 20, 5, 2))))
    stream = b"".join(blocks_stream([
        thinking_block(["Let me ", "see."], "sig123"), text_block(["Check", "ing."]),
        redacted_thinking_block("EmwK"),
        tool_use_block("toolu_1", "get_weather", ["", '{"city": ', '"Paris"}'])],
        "tool_use", (30, 20, 5, 2)))
    events, _ = decode_sse([stream])
    streamed = AnthropicStreamDecoder(message_id="m1", model="client-model", input_tokens=9)
    from_stream = collected(streamed.feed([e.data for e in events]))
    assert streamed.done and whole.done
    assert from_message == from_stream
    assert [(b.kind, b.text, b.signature, b.tool_input) for b in from_message.blocks] == [
        ("thinking", "Let me see.", "sig123", {}), ("text", "Checking.", "", {}),
        ("tool_use", "", "", {"city": "Paris"})]
    assert from_message.stop_reason == "tool_use" and from_message.complete
    assert (from_message.usage.input_tokens, from_message.usage.cache_read_input_tokens) == (30, 5)

"""The real CLI's recorded stream-json -> canonical events, through the NDJSON framing, fed
whole, byte by byte and in random splits; the events are the same every way, and pass the
Anthropic and the OpenAI stream grammars once encoded."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from proxy.canonical import (
    BlockStart,
    BlockStop,
    Collector,
    Event,
    MessageDelta,
    MessageStart,
    MessageStop,
    TextDelta,
    ToolArgsDelta,
    Usage,
)
from proxy.dialects.anthropic import stream_encode as anthropic_encode
from proxy.dialects.claude_code.failures import LOGIN_HINT
from proxy.dialects.claude_code.stream_decode import ABANDONED, ClaudeCodeStreamDecoder
from proxy.dialects.openai import stream_encode as openai_encode
from proxy.errors import ProxyError, UpstreamProtocolError, UpstreamStreamError
from proxy.ndjson import NDJSONDecoder
from tests.support import (
    check_anthropic_stream,
    check_openai_stream,
    fixture,
    parse_anthropic_sse,
    splits,
)

NOW = 1_800_000_000.0


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(openai_encode, "time", SimpleNamespace(time=lambda: NOW))


def decode(chunks: list[bytes], clock: float = NOW, **kwargs: Any
           ) -> tuple[list[Event], ProxyError | None, ClaudeCodeStreamDecoder]:
    """Framing and decoder, read by read, as the backend drives them."""
    framing = NDJSONDecoder()
    decoder = ClaudeCodeStreamDecoder(message_id="msg_test", model="client-model",
                                      input_tokens=100, clock=lambda: clock, **kwargs)
    events: list[Event] = []
    try:
        for chunk in chunks:
            events += decoder.feed(framing.frames(chunk))
            if decoder.done or decoder.failed:
                break
        if not decoder.done:
            events += decoder.finish(truncated=framing.truncated)
    except ProxyError as error:
        return events, error, decoder
    return events, None, decoder


def decode_all(raw: bytes, **kwargs: Any) -> tuple[list[Event], ProxyError | None]:
    """Every split gives the same events and the same failure; both stream grammars hold."""
    results = [decode(chunks, **kwargs) for chunks in splits(raw)]
    events, error, _ = results[0]
    for other_events, other_error, _ in results[1:]:
        assert other_events == events
        assert type(other_error) is type(error)
        assert str(other_error) == str(error)
    _check_grammars(events, error)
    return events, error


def _check_grammars(events: list[Event], error: ProxyError | None) -> None:
    if not events:
        return
    anthropic = anthropic_encode.AnthropicStreamEncoder().encode(events)
    openai = openai_encode.OpenAIStreamEncoder(chunk_id="chatcmpl-test", model="client-model",
                                               include_usage=True).encode(events)
    if error is not None:
        anthropic += anthropic_encode.error_frame(error.kind, error.message)
        openai += openai_encode.error_frame(error.kind, error.message)
    check_anthropic_stream(parse_anthropic_sse(anthropic), complete=error is None)
    check_openai_stream(openai, complete=error is None)


def ok(name: str, **kwargs: Any) -> tuple[list[Event], Any]:
    events, error = decode_all(fixture(f"claude_code_cli/{name}.jsonl"), **kwargs)
    assert error is None, error
    collector = Collector()
    collector.feed(events)
    assert collector.message.complete
    return events, collector.message


def failed(name: str, **kwargs: Any) -> tuple[list[Event], ProxyError]:
    events, error = decode_all(fixture(f"claude_code_cli/{name}.jsonl"), **kwargs)
    assert error is not None
    return events, error


def texts(message: Any) -> list[tuple[str, str]]:
    return [(block.kind, block.text) for block in message.blocks]


def lines(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in fixture(f"claude_code_cli/{name}.jsonl").splitlines()]


# --------------------------------------------------------------------------- answers


def test_text_streams_as_it_arrives_with_the_results_usage() -> None:
    events, message = ok("text")
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert deltas == ["Hello", " from", " the", " fake", " upstream."]  # several deltas
    assert texts(message) == [("text", "Hello from the fake upstream.")]
    assert events[0] == MessageStart("msg_test", "client-model",
                                     Usage(input_tokens=25, output_tokens=1))
    assert events[-2:] == [MessageDelta("end_turn", Usage(input_tokens=25, output_tokens=12)),
                           MessageStop()]


def test_the_whole_assistant_line_of_a_streamed_block_is_not_sent_twice() -> None:
    raw = lines("text")
    assert [line["type"] for line in raw].count("assistant") == 1
    events, _ = ok("text")
    assert [type(e) for e in events].count(BlockStart) == 1


def test_without_partial_messages_whole_blocks_are_replayed() -> None:
    events, message = ok("text_no_partial")
    assert texts(message) == [("text", "Hello there.")]
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Hello there."]


def test_a_subscription_answer_with_an_allowed_rate_limit_event() -> None:
    assert any(line["type"] == "rate_limit_event" for line in lines("text_oauth"))
    _, message = ok("text_oauth")
    assert texts(message) == [("text", "Hi.")]


def test_a_warning_rate_limit_does_not_fail_the_answer() -> None:
    (info,) = [line["rate_limit_info"] for line in lines("rate_limit_warning")
               if line["type"] == "rate_limit_event"]
    assert info["unifiedWindows"]["five_hour"]["status"] == "allowed_warning"
    _, message = ok("rate_limit_warning")
    assert texts(message) == [("text", "Still fine.")]


def test_thinking_streams_as_thinking_with_its_signature() -> None:
    _, message = ok("thinking")
    assert texts(message) == [("thinking", "Two and two make four."), ("text", "Four.")]
    assert message.blocks[0].signature == "EqQBCgIYAhIMsigFixture"


def test_the_clis_own_tools_are_its_business_and_blocks_number_on_across_its_calls() -> None:
    events, message = ok("own_tool_refused")
    assert texts(message) == [("text", "Checking."), ("text", "I cannot run that.")]
    assert [e.index for e in events if isinstance(e, BlockStart)] == [0, 1]
    assert message.stop_reason == "end_turn"
    assert message.usage == Usage(input_tokens=50, output_tokens=24)  # both calls
    _, message = ok("own_tool_bash")
    assert texts(message) == [("text", "It printed hello.")]


def test_a_client_tool_streams_and_ends_the_turn_before_the_cli_answers_it() -> None:
    events, message = ok("own_tool_refused", client_tools={"Bash"})
    assert [(b.kind, b.tool_name) for b in message.blocks] == [("text", ""), ("tool_use", "Bash")]
    assert message.blocks[1].tool_id == "toolu_01Bash"
    assert message.blocks[1].tool_input == {"command": "echo hi"}
    assert [e.partial_json for e in events if isinstance(e, ToolArgsDelta)] == [
        '{"comm', 'and": "echo hi"}']  # streamed, the empty first fragment skipped
    assert message.stop_reason == "tool_use"
    assert "I cannot" not in json.dumps([b.text for b in message.blocks])


def test_a_client_tool_in_whole_blocks_ends_the_turn_at_the_clis_own_answer() -> None:
    raw = b"".join(line for line in fixture("claude_code_cli/own_tool_refused.jsonl")
                   .splitlines(keepends=True) if b'"type":"stream_event"' not in line)
    events, error = decode_all(raw, client_tools={"Bash"})
    assert error is None
    collector = Collector()
    collector.feed(events)
    assert [b.kind for b in collector.message.blocks] == ["text", "tool_use"]
    assert collector.message.stop_reason == "tool_use"


def test_the_clis_non_streaming_retry_after_an_empty_broken_stream_is_replayed() -> None:
    abandoned = [line for line in lines("abandoned_before_text")
                 if line.get("abandoned_blocks")]
    assert abandoned, "the fixture holds an abandoned stream"
    _, message = ok("abandoned_before_text")
    assert texts(message) == [("text", "Hello after a retry.")]


def test_the_session_id_and_the_last_retry_are_kept() -> None:
    _, _, decoder = decode([fixture("claude_code_cli/text.jsonl")])
    assert decoder.session_id == lines("text")[2]["session_id"]
    _, _, decoder = decode([fixture("claude_code_cli/error_529.jsonl")])
    assert decoder.last_retry == "529 overloaded"


# -------------------------------------------------------------------------- failures


def test_an_upstream_400_names_the_upstreams_message() -> None:
    events, error = failed("error_400")
    assert events == []
    assert isinstance(error, UpstreamStreamError)
    assert (error.status, error.kind) == (400, "invalid_request")
    assert "400 system.1: cache_control blocks are limited to 4 per request" in error.message


def test_overload_after_the_clis_retries_is_a_529() -> None:
    _, error = failed("error_529")
    assert (error.status, error.kind) == (529, "overloaded")
    assert "Overloaded" in error.message


def test_an_api_key_rate_limit_is_a_429_without_a_known_reset() -> None:
    _, error = failed("error_429_api_key")
    assert (error.status, error.kind) == (429, "rate_limit")
    assert "per-minute rate limit" in error.message and error.retry_after is None


def test_a_rejected_subscription_limit_is_a_429_with_retry_after_until_the_reset() -> None:
    (event,) = [line for line in lines("rate_limit_rejected")
                if line["type"] == "rate_limit_event"]
    resets = event["rate_limit_info"]["resetsAt"]
    _, error = failed("rate_limit_rejected", clock=resets - 1234.5)
    assert (error.status, error.kind, error.retry_after) == (429, "rate_limit", "1235")
    assert "5-hour limit" in error.message
    _, error = failed("rate_limit_rejected", clock=resets + 60)  # already past: retry soon
    assert error.retry_after == "1"


def test_not_logged_in_says_what_to_run() -> None:
    events, error = failed("not_logged_in")
    assert events == []
    assert error.status == 503 and error.message.startswith(LOGIN_HINT)
    assert "claude login" in error.message and "claude setup-token" in error.message
    assert "Not logged in" in error.message


def test_a_model_the_cli_refuses_fails_before_another_model_answers() -> None:
    events, error = failed("model_refused")
    assert events == []  # the answer that follows comes from the CLI's old model
    assert (error.status, error.kind) == (404, "not_found")
    assert "xyz-model" in error.message


def test_an_abandoned_stream_that_reached_the_client_is_an_error_after_its_text() -> None:
    events, error = failed("abandoned_after_text")
    assert error.message == ABANDONED and error.status == 502
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Hel"]
    assert isinstance(events[-1], BlockStop)
    events, error = failed("truncated_then_retry")  # the CLI's streaming retry: the same
    assert error.message == ABANDONED
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Hel"]


def test_a_cut_connection_retried_before_anything_was_shown_is_a_clean_answer() -> None:
    assert any(line.get("subtype") == "api_retry" for line in lines("cut_then_retry"))
    _, message = ok("cut_then_retry")
    assert texts(message) == [("text", "Hello again.")]


def test_a_midstream_error_without_the_fallback_keeps_the_text_then_fails() -> None:
    events, error = failed("midstream_error_no_fallback")
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Hel"]
    assert (error.status, error.kind) == (529, "overloaded")
    assert "API Error: Overloaded" in error.message


def test_the_clis_give_up_on_max_tokens_is_an_error_after_what_it_streamed() -> None:
    events, error = failed("max_tokens")
    assert "output token maximum" in error.message and error.status == 502
    assert [e.text for e in events if isinstance(e, TextDelta)][:2] == ["Once upon", " a"]


def test_output_that_ends_before_the_result_is_a_protocol_error() -> None:
    raw = fixture("claude_code_cli/text.jsonl")
    cut = raw[: raw.rindex(b'{"duration_api_ms"')]
    events, error = decode_all(cut)
    assert isinstance(error, UpstreamProtocolError)
    assert "before its result line" in error.message
    assert isinstance(events[-1], BlockStop)
    _, error = decode_all(cut + b'{"type":"res')
    assert error is not None and "in the middle of a line" in error.message


def test_a_line_that_is_not_json_is_a_protocol_error() -> None:
    _, error = decode_all(b'{"type":"system","subtype":"init"}\nnot json\n')
    assert isinstance(error, UpstreamProtocolError)


def test_an_error_result_without_an_assistant_line_still_names_its_cause() -> None:
    raw = (b'{"type":"result","subtype":"error_max_turns","is_error":true,'
           b'"errors":["Reached maximum number of turns (1)"]}\n')
    _, error = decode_all(raw)
    assert isinstance(error, UpstreamStreamError) and error.status == 502
    assert "maximum number of turns" in error.message


def test_a_subagents_lines_are_not_the_answer() -> None:
    sub = {"type": "stream_event", "parent_tool_use_id": "toolu_x",
           "event": {"type": "content_block_start", "index": 0,
                     "content_block": {"type": "text", "text": ""}}}
    raw = b"".join(json.dumps(line).encode() + b"\n" for line in lines("text")[:4])
    raw += json.dumps(sub).encode() + b"\n"
    raw += b"".join(json.dumps(line).encode() + b"\n" for line in lines("text")[4:])
    events, error = decode_all(raw)
    assert error is None and [type(e) for e in events].count(BlockStart) == 1

"""backboard's stream and replies -> canonical events, fed whole, byte by byte and in random
splits with identical results; every failure raises with backboard's cause, never an
empty reply; the events make valid streams in both client dialects."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import aiohttp
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
    ThinkingDelta,
    Usage,
    coalesce,
)
from proxy.dialects.anthropic.stream_encode import AnthropicStreamEncoder
from proxy.dialects.backboard.stream_decode import BackboardStreamDecoder
from proxy.dialects.openai import stream_encode
from proxy.dialects.openai.stream_encode import OpenAIStreamEncoder
from proxy.errors import ProxyError, UpstreamProtocolError, UpstreamStreamError
from proxy.sse import SSEDecoder
from proxy.tokens import estimate_text
from tests.fakes.backboard_model import Reply, Wire
from tests.fakes.backboard_upstream import DEFAULT_KEY, FakeBackboard
from tests.support import check_anthropic_stream, check_openai_stream, parse_anthropic_sse, splits

INPUT_ESTIMATE = 42


def body(frames: list[dict[str, Any]], wire: Wire | None = None) -> bytes:
    wire = wire or Wire()
    return b"".join(wire.frame(f) for f in frames)


def content(*pieces: str) -> list[dict[str, Any]]:
    return [{"type": "content_streaming", "content": p} for p in pieces]


START = {"type": "run_started", "run_id": "run_abc", "thread_id": "t-1"}
END = {"type": "run_ended", "status": "completed", "run_id": "run_abc",
       "model_provider": "openai", "model_name": "gpt-4o", "input_tokens": 12,
       "output_tokens": 3, "total_tokens": 15, "memory_operation_id": None}


def decode(chunks: list[bytes]) -> tuple[list[Event], Exception | None, BackboardStreamDecoder]:
    """SSE decoder -> backboard decoder, read by read, as a backend drives them."""
    sse = SSEDecoder()
    decoder = BackboardStreamDecoder(message_id="msg_1", model="client-model",
                                     input_tokens=INPUT_ESTIMATE)
    events: list[Event] = []
    try:
        for chunk in chunks:
            events += decoder.feed(sse.frames(chunk))
            if decoder.done or decoder.failed:
                break
        events += decoder.finish(truncated=sse.truncated)
    except Exception as exc:  # the test says which exceptions are right
        return events, exc, decoder
    return events, None, decoder


def decode_all(raw: bytes) -> tuple[list[Event], Exception | None]:
    """Every split of ``raw`` gives the same events and the same failure."""
    first, error, _ = decode([raw])
    for chunks in splits(raw):
        events, other, _ = decode(chunks)
        assert coalesce(events) == coalesce(first), chunks
        assert type(other) is type(error) and str(other) == str(error)
    return coalesce(first), error


def text(events: list[Event]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def test_a_stream_becomes_one_text_block_with_backboards_usage() -> None:
    raw = body([START, *content("Hel", "lo, ", "wörld 😀"), END])
    events, error = decode_all(raw)
    assert error is None
    assert events == [MessageStart("msg_1", "client-model", Usage(input_tokens=INPUT_ESTIMATE)),
                      BlockStart(0, "text"), TextDelta(0, "Hello, wörld 😀"), BlockStop(0),
                      MessageDelta("end_turn", Usage(input_tokens=12, output_tokens=3)),
                      MessageStop()]
    assert decode([raw])[2].run_id == "run_abc"


def test_without_token_counts_the_estimates_stand_in() -> None:
    reply = "Ünïcode and ASCII, " * 7
    end = {k: v for k, v in END.items() if "tokens" not in k}
    events, error = decode_all(body([*content(reply[:10], reply[10:]), end]))
    assert error is None
    (delta,) = [e for e in events if isinstance(e, MessageDelta)]
    assert delta.usage == Usage(input_tokens=INPUT_ESTIMATE, output_tokens=estimate_text(reply))


@pytest.mark.parametrize("wire", [
    Wire(event_lines=True), Wire(space=False), Wire(done_marker=True),
    Wire(status_case="upper"), Wire(run_started=False)])
def test_every_recorded_wire_variant_reads_the_same(wire: Wire) -> None:
    frames = [*content("a", "b"), dict(END, status=wire.completed())]
    raw = body(([START] if wire.run_started else []) + frames, wire)
    if wire.done_marker:
        raw += wire.done()
    events, error = decode_all(raw)
    assert error is None and text(events) == "ab" and isinstance(events[-1], MessageStop)


def test_crlf_lines_and_unknown_frames_are_read_too() -> None:
    raw = body([START, {"type": "memory_retrieved", "memories": []}, *content("x"),
                {"type": "tool_call_start", "tool_call": {}}, {"type": "future_kind"}, END])
    events, error = decode_all(raw.replace(b"\n", b"\r\n"))
    assert error is None and text(events) == "x"


def test_reasoning_becomes_a_thinking_block_before_the_text() -> None:
    raw = body([START, {"type": "reasoning_streaming", "content": "Let me think",
                        "accumulated_reasoning": "Let me think"},
                {"type": "reasoning_ended"}, *content("Answer."), END])
    events, error = decode_all(raw)
    assert error is None
    assert [e for e in events if isinstance(e, BlockStart | BlockStop)] == [
        BlockStart(0, "thinking"), BlockStop(0), BlockStart(1, "text"), BlockStop(1)]
    assert ThinkingDelta(0, "Let me think") in events


# ------------------------------------------------------------------------- failures


@pytest.mark.parametrize(("frame", "words"), [
    ({"type": "error", "error": "provider exploded"}, "backboard reported an error: "
                                                      "provider exploded"),
    ({"type": "error", "message": "provider exploded"}, "provider exploded"),
    ({"type": "error", "error": {"message": "nested cause"}}, "nested cause"),
    ({"type": "run_failed", "message": "model crashed"}, "backboard's run failed: model crashed"),
    ({"type": "run_ended", "status": "failed"}, "backboard's run ended with status 'failed'"),
    ({"type": "run_ended", "status": "cancelled", "error": "stopped"}, "status 'cancelled': "
                                                                       "stopped"),
    ({"type": "run_ended"}, "status None"),
])
def test_in_stream_failures_raise_after_the_text_before_them(frame: dict[str, Any],
                                                             words: str) -> None:
    events, error = decode_all(body([START, *content("partial "), frame, *content("never"), END]))
    assert text(events) == "partial " and not any(isinstance(e, MessageStop) for e in events)
    assert isinstance(error, UpstreamStreamError) and words in error.message
    assert error.status == 502


def test_a_failure_before_any_content_raises_at_once() -> None:
    decoder = BackboardStreamDecoder(message_id="m", model="m", input_tokens=1)
    with pytest.raises(UpstreamStreamError, match="no capacity"):
        decoder.feed(['{"type":"run_started","run_id":"r"}',
                      '{"type":"error","error":"no capacity"}'])


@pytest.mark.parametrize(("cause", "status", "kind", "starts"), [
    ("context_length_exceeded: 210000 > 200000", 400, "invalid_request", "prompt is too long"),
    ("model_not_found: gpt-9 does not exist", 404, "not_found", "backboard reported"),
    ("Rate limit reached for requests", 429, "rate_limit", "backboard reported"),
])
def test_causes_that_a_client_can_act_on_get_their_status(cause: str, status: int, kind: str,
                                                          starts: str) -> None:
    _, error = decode_all(body([START, {"type": "error", "error": cause}]))
    assert isinstance(error, UpstreamStreamError)
    assert (error.status, error.kind) == (status, kind)
    assert error.message.startswith(starts) and cause in error.message


def test_a_stream_that_ends_without_run_ended_is_cut() -> None:
    events, error = decode_all(body([START, *content("all of it")]))
    assert text(events) == "all of it"
    assert isinstance(error, UpstreamProtocolError)
    assert error.message.startswith("backboard's stream ended before run_ended")
    _, error, _ = decode([body([START, *content("x")]) + b'data: {"type":"run_en'])
    assert isinstance(error, UpstreamProtocolError) and "in the middle of a frame" in error.message
    _, error = decode_all(body([START, *content("x")]) + b"data: [DONE]\n\n")
    assert isinstance(error, UpstreamProtocolError)


def test_a_run_that_completes_without_text_is_an_error_not_an_empty_reply() -> None:
    _, error = decode_all(body([START, END]))
    assert isinstance(error, UpstreamStreamError) and "without any reply text" in error.message
    thinking_only = {"type": "reasoning_streaming", "content": "hmm"}
    _, error = decode_all(body([START, thinking_only, END]))
    assert isinstance(error, UpstreamStreamError)


@pytest.mark.parametrize("raw", [
    b"data: not json\n\n", b'data: {"content": "no type"}\n\n', b"data: [1, 2]\n\n",
    b'data: {"type": "content_streaming", "content": 5}\n\n',
    b'data: {"type": "tool_submit_required", "run_id": "r", "tool_calls": []}\n\n',
])
def test_broken_frames_and_native_tool_requests_are_protocol_errors(raw: bytes) -> None:
    _, error = decode_all(raw)
    assert isinstance(error, UpstreamProtocolError)


# ---------------------------------------------------------------------- JSON replies


def reply_events(reply: dict[str, Any]) -> list[Event]:
    decoder = BackboardStreamDecoder(message_id="msg_1", model="client-model",
                                     input_tokens=INPUT_ESTIMATE)
    return decoder.feed_reply(reply)


FLAT = {"message": "Message added successfully", "thread_id": "t", "content": "Hi there!",
        "message_id": "m", "role": "assistant", "status": "COMPLETED", "tool_calls": None,
        "run_id": "run_1", "model_provider": "openai", "model_name": "gpt-4o",
        "input_tokens": 12, "output_tokens": 3, "total_tokens": 15, "timestamp": "x"}


def test_a_flat_reply_gives_the_events_its_stream_would() -> None:
    streamed, _ = decode_all(body([*content("Hi there!"), END]))
    assert coalesce(reply_events(FLAT)) == streamed


def test_the_messages_shape_reads_its_last_message() -> None:
    newer = {"messages": [{"role": "user", "content": "hi"},
                          {"role": "assistant", "content": "Hello!", "status": "COMPLETED",
                           "output_tokens": 2}],
             "context_usage": {"used_tokens": 30, "percent": 1.0}}
    events = reply_events(newer)
    assert text(events) == "Hello!"
    assert events[-2] == MessageDelta("end_turn", Usage(input_tokens=30, output_tokens=2))


@pytest.mark.parametrize(("change", "error_type", "words"), [
    ({"status": "FAILED", "content": None}, UpstreamStreamError, "status 'FAILED'"),
    ({"status": "REQUIRES_ACTION", "tool_calls": [{}]}, UpstreamProtocolError, "native tool"),
    ({"content": ""}, UpstreamStreamError, "without any reply text"),
    ({"content": ["x"]}, UpstreamProtocolError, "not text"),
])
def test_json_replies_that_failed(change: dict[str, Any], error_type: type[Exception],
                                  words: str) -> None:
    with pytest.raises(error_type, match=words):
        reply_events(dict(FLAT, **change))
    with pytest.raises(UpstreamProtocolError):
        reply_events({"messages": []})


# ------------------------------------------------------------------ client streams


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream_encode, "time", SimpleNamespace(time=lambda: 1_741_570_283.0))


@pytest.mark.parametrize("failure", [None, {"type": "run_failed", "message": "x"}])
def test_the_events_make_valid_client_streams(failure: dict[str, Any] | None,
                                              frozen_clock: None) -> None:
    frames = [START, *content("Hello ", "there")] + ([failure] if failure else [END])
    for chunks in splits(body(frames)):
        events, error, _ = decode(chunks)
        anthropic = AnthropicStreamEncoder().encode(events)
        openai = OpenAIStreamEncoder(chunk_id="c", model="m", include_usage=True).encode(events)
        if isinstance(error, ProxyError):
            anthropic += (b'event: error\ndata: {"type":"error","error":{"type":"api_error",'
                          b'"message":"x"}}\n\n')
            openai += stream_encode.error_frame(error.kind, error.message)
        check_anthropic_stream(parse_anthropic_sse(anthropic), complete=error is None)
        check_openai_stream(openai, complete=error is None)


# ---------------------------------------------------------------- real bytes from the fake


async def raw_answer(fake: FakeBackboard, reply: Reply) -> bytes:
    headers = {"X-API-Key": DEFAULT_KEY}
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.post(fake.base_url + "/assistants", json={"name": "a"}) as r:
            assistant = (await r.json())["assistant_id"]
        async with session.post(f"{fake.base_url}/assistants/{assistant}/threads",
                                json={}) as r:
            thread = (await r.json())["thread_id"]
        fake.script(reply)
        async with session.post(f"{fake.base_url}/threads/{thread}/messages",
                                json={"content": "go", "stream": True}) as r:
            return await r.read()


@pytest.mark.parametrize(("reply", "expected"), [
    (Reply("Real bytes from the fake, in pieces.", chunk_size=5), None),
    (Reply("Cut short", fault="no_run_ended"), UpstreamProtocolError),
    (Reply("Some text", fault="error", fault_after=1), UpstreamStreamError),
])
async def test_the_fakes_own_bytes_decode(backboard_upstream: FakeBackboard, reply: Reply,
                                          expected: type[Exception] | None) -> None:
    raw = await raw_answer(backboard_upstream, reply)
    events, error = decode_all(raw)
    assert (type(error) if error else None) is expected
    if expected is None:
        collector = Collector()
        collector.feed(events)
        assert collector.message.blocks[0].text == reply.text
        assert collector.message.usage.output_tokens == len(reply.text.split())

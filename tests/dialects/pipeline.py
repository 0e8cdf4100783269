"""The paths a request and an upstream answer take through the sans-I/O core, end to end,
for the hostile-input and property tests.

* ``take_anthropic`` and ``take_openai``: raw body -> parsed request -> token estimate ->
  rendered for both upstream dialects -> written with orjson, as the edge does;
* ``run_decoder``: frames fed in batches to a stream decoder, as a backend feeds them; the
  events that came out are checked against the canonical grammar, encoded for both client
  dialects and collected into both response bodies, as the edge does.

Only a ``ProxyError`` may end either path; anything else escapes, and the test fails.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from proxy.canonical import (
    BlockStart,
    BlockStop,
    Collector,
    Event,
    MessageDelta,
    MessageStart,
    MessageStop,
    Request,
    SignatureDelta,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
    Usage,
)
from proxy.dialects.anthropic import request_parse as anthropic_parse
from proxy.dialects.anthropic import request_render as anthropic_render
from proxy.dialects.anthropic import responses as anthropic_responses
from proxy.dialects.anthropic.stream_encode import AnthropicStreamEncoder
from proxy.dialects.fields import parse_json_object
from proxy.dialects.openai import request_parse as openai_parse
from proxy.dialects.openai import request_render as openai_render
from proxy.dialects.openai import responses as openai_responses
from proxy.dialects.openai.stream_encode import OpenAIStreamEncoder
from proxy.dialects.stream_decoding import StreamDecoder
from proxy.errors import ProxyError
from proxy.tokens import estimate_input_tokens

_DELTA_KINDS = {TextDelta: "text", ThinkingDelta: "thinking", SignatureDelta: "thinking",
                ToolArgsDelta: "tool_use"}


def raw(body: Any) -> bytes:
    """A body as a client sends it (the stdlib writes deeper than orjson can)."""
    return json.dumps(body).encode()


def take_anthropic(body: Any, *, for_counting: bool = False) -> Request:
    request = anthropic_parse.parse_request(parse_json_object(raw(body)),
                                            for_counting=for_counting)
    _render_both(request)
    return request


def take_openai(body: Any) -> Request:
    request = openai_parse.parse_request(parse_json_object(raw(body)))
    _render_both(request)
    return request


def _render_both(request: Request) -> None:
    estimate_input_tokens(request)
    orjson.dumps(anthropic_render.render_request(request, anthropic_render.RenderOptions("m")))
    orjson.dumps(openai_render.render_request(request, openai_render.RenderOptions("m")).body)


def run_decoder(decoder: StreamDecoder, feeds: list[list[str]], *,
                truncated: bool = False) -> tuple[list[Event], ProxyError | None]:
    """Feed each batch of frames, then finish, as a backend does; check what came out."""
    events: list[Event] = []
    error: ProxyError | None = None
    try:
        for frames in feeds:
            events += decoder.feed(frames)
            if decoder.done or decoder.failed:
                break
        if not decoder.done or decoder.failed:
            events += decoder.finish(truncated=truncated)  # type: ignore[attr-defined]
    except ProxyError as exc:
        error = exc
    check_events(events, complete=error is None)
    return events, error


def check_events(events: list[Event], *, complete: bool) -> None:
    """The canonical grammar every decoder promises, then every way the edge writes the
    events out: both stream encoders, and (for a complete answer) both JSON bodies."""
    check_grammar(events, complete=complete)
    AnthropicStreamEncoder().encode(events)
    OpenAIStreamEncoder(chunk_id="c", model="m", include_usage=True).encode(events)
    collector = Collector()
    collector.feed(events)
    if complete:
        orjson.dumps(anthropic_responses.message_body(collector.message))
        orjson.dumps(openai_responses.completion_body(collector.message, completion_id="c",
                                                      created=0))


def check_grammar(events: list[Event], *, complete: bool) -> None:
    if not events:
        assert not complete, "a complete answer with no events"
        return
    assert isinstance(events[0], MessageStart), events[:2]
    start = events[0]
    assert isinstance(start.id, str) and isinstance(start.model, str)
    _check_usage(start.usage)
    open_: tuple[int, str] | None = None
    next_index, ended = 0, False
    for event in events[1:]:
        assert not isinstance(event, MessageStart), "a second MessageStart"
        assert not ended, f"{event!r} after MessageStop"
        if isinstance(event, BlockStart):
            assert open_ is None and event.index == next_index, (open_, event)
            assert isinstance(event.tool_id, str) and isinstance(event.tool_name, str)
            open_, next_index = (event.index, event.kind), next_index + 1
        elif isinstance(event, BlockStop):
            assert open_ is not None and event.index == open_[0], (open_, event)
            open_ = None
        elif isinstance(event, MessageDelta):
            assert open_ is None, "MessageDelta inside a block"
            assert isinstance(event.stop_reason, str), event
            assert event.stop_sequence is None or isinstance(event.stop_sequence, str), event
            _check_usage(event.usage)
        elif isinstance(event, MessageStop):
            ended = True
        else:
            assert open_ is not None and event.index == open_[0], (open_, event)
            assert _DELTA_KINDS[type(event)] == open_[1], (open_, event)
            text = event.signature if isinstance(event, SignatureDelta) else (
                event.partial_json if isinstance(event, ToolArgsDelta) else event.text)
            assert isinstance(text, str), event
    if complete:
        assert ended and isinstance(events[-2], MessageDelta), events[-3:]


def _check_usage(usage: Usage) -> None:
    for value in (usage.input_tokens, usage.output_tokens, usage.cache_read_input_tokens,
                  usage.cache_creation_input_tokens):
        assert type(value) is int and 0 <= value < 2**53, usage

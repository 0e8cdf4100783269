"""Client input that once crashed the proxy (a 500 the SDKs retried three times) is a 400
naming the field; upstream JSON of the wrong shape is a 502, never a crash.

Every request is taken the way the edge takes it (tests/dialects/pipeline.py): the raw
body parsed, the request parsed, its input tokens estimated, and rendered."""

from __future__ import annotations

import json
from typing import Any

import pytest

from proxy.canonical import Collector
from proxy.dialects.anthropic.stream_decode import AnthropicStreamDecoder
from proxy.dialects.fields import MAX_JSON_DEPTH, parse_json_object
from proxy.dialects.openai.stream_decode import OpenAIStreamDecoder
from proxy.errors import InvalidRequest, UpstreamProtocolError, UpstreamStreamError
from tests.dialects.pipeline import raw, run_decoder, take_anthropic, take_openai

USER = {"role": "user", "content": "hi"}


def nested(depth: int) -> Any:
    """An object ``depth`` levels deep: {"a": {"a": … {} …}}."""
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def refused(take: Any, body: dict[str, Any], **kwargs: Any) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        take(body, **kwargs)
    return caught.value


# ------------------------------------------------------------------ Anthropic clients

def test_a_document_media_type_that_is_not_a_string() -> None:
    block = {"type": "document", "source": {"type": "base64", "media_type": 5, "data": "QQ=="}}
    body = {"model": "m", "max_tokens": 5,
            "messages": [{"role": "user", "content": [block]}]}
    error = refused(take_anthropic, body)
    assert error.param == "messages.0.content.0.source.media_type"
    assert "string" in error.message


@pytest.mark.parametrize("where", ["tool schema", "tool_use input", "count_tokens"])
def test_json_nested_300_deep(where: str) -> None:
    deep = nested(300)
    body: dict[str, Any] = {"model": "m", "max_tokens": 5, "messages": [USER]}
    if where == "tool schema":
        body["tools"] = [{"name": "t", "input_schema": deep}]
        expected = "tools.0.input_schema.a"
    elif where == "tool_use input":
        body["messages"] = [USER, {"role": "assistant", "content": [
            {"type": "tool_use", "id": "t1", "name": "t", "input": deep}]}]
        expected = "messages.1.content.0.input"
    else:
        del body["max_tokens"]
        body["tools"] = [{"name": "t", "input_schema": deep}]
        expected = "tools.0.input_schema"
    error = refused(take_anthropic, body, for_counting=where == "count_tokens")
    assert error.param is not None and error.param.startswith(expected)
    assert f"{MAX_JSON_DEPTH} levels" in error.message


def test_nesting_up_to_the_limit_is_taken_and_written_back() -> None:
    # body -> tools -> 0 -> input_schema: the schema may use the rest of the levels.
    body = {"model": "m", "max_tokens": 5, "messages": [USER],
            "tools": [{"name": "t", "input_schema": nested(MAX_JSON_DEPTH - 3)}]}
    take_anthropic(body)
    body["tools"][0]["input_schema"] = nested(MAX_JSON_DEPTH - 2)
    refused(take_anthropic, body)


def test_a_relayed_body_too_deep_to_write_back_is_refused_before_the_relay() -> None:
    # The relay rewrites the model name with orjson.dumps, which writes 254 levels at most.
    body = raw({"model": "m", "max_tokens": 5, "messages": [USER], "metadata": nested(300)})
    with pytest.raises(InvalidRequest) as caught:
        parse_json_object(body)
    assert caught.value.param is not None and caught.value.param.startswith("metadata.a.a")


def test_a_body_nested_past_what_orjson_reads_is_a_400() -> None:
    with pytest.raises(InvalidRequest):
        parse_json_object(b'{"a":' + b"[" * 2000 + b"]" * 2000 + b"}")


# --------------------------------------------------------------------- OpenAI clients

def chat(**fields: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [USER], **fields}


@pytest.mark.parametrize(("fields", "param"), [
    ({"reasoning_effort": [1]}, "reasoning_effort"),
    ({"reasoning_effort": {"a": 1}}, "reasoning_effort"),
    ({"reasoning": {"effort": ["high"]}}, "reasoning.effort"),
    ({"reasoning": 5}, "reasoning"),
    ({"tool_choice": {"type": "allowed_tools", "allowed_tools": "x"}},
     "tool_choice.allowed_tools"),
    ({"modalities": 5}, "modalities"),
    ({"modalities": [5]}, "modalities"),
])
def test_mistyped_openai_fields(fields: dict[str, Any], param: str) -> None:
    error = refused(take_openai, chat(**fields))
    assert error.param == param, error.message


@pytest.mark.parametrize(("assistant", "param"), [
    ({"tool_calls": 5}, "messages.1.tool_calls"),
    ({"tool_calls": [{"id": 5, "function": {"name": "f", "arguments": "{}"}}]},
     "messages.1.tool_calls.0.id"),
    ({"refusal": 5}, "messages.1.refusal"),
    ({"function_call": "f"}, "messages.1.function_call"),
])
def test_mistyped_assistant_fields(assistant: dict[str, Any], param: str) -> None:
    body = {"model": "m", "messages": [USER, {"role": "assistant", **assistant}, USER]}
    error = refused(take_openai, body)
    assert error.param == param, error.message


def test_tool_arguments_nested_too_deep() -> None:
    arguments = json.dumps(nested(300))
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": arguments}}
    body = {"model": "m", "messages": [USER, {"role": "assistant", "tool_calls": [call]},
                                       {"role": "tool", "tool_call_id": "c1", "content": "ok"}]}
    error = refused(take_openai, body)
    assert error.param is not None
    assert error.param.startswith("messages.1.tool_calls.0.function.arguments.a")


def test_tool_arguments_nested_past_what_orjson_reads_stay_raw_text() -> None:
    arguments = "[" * 2000 + "]" * 2000
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": arguments}}
    body = {"model": "m", "messages": [USER, {"role": "assistant", "tool_calls": [call]}]}
    request = take_openai(body)
    assert request.messages[1].parts[0].input == {"_raw": arguments}  # type: ignore[union-attr]


# ------------------------------------------------------------------------ upstreams

def test_an_openai_completion_whose_message_is_not_an_object() -> None:
    decoder = OpenAIStreamDecoder(message_id="msg_1", model="m", input_tokens=1)
    with pytest.raises(UpstreamProtocolError):
        decoder.feed_completion({"choices": [{"message": "str"}]})


@pytest.mark.parametrize("body", [
    {"content": 5},
    {"content": [5]},
    {"content": [{"type": "text", "text": 5}]},
    {"usage": "x", "content": []},
])
def test_an_anthropic_message_of_the_wrong_shape(body: dict[str, Any]) -> None:
    decoder = AnthropicStreamDecoder(message_id="msg_1", model="m", input_tokens=1)
    with pytest.raises(UpstreamProtocolError):
        decoder.feed_message(body)


@pytest.mark.parametrize("depth", [300, 2000])
def test_upstream_tool_arguments_too_deep_to_write_back_are_kept_as_text(depth: int) -> None:
    # orjson reads 1024 levels and writes 254: a non-streaming answer is written again.
    arguments = "[" * depth + "]" * depth if depth > 1024 else json.dumps({"a": nested(depth)})
    frames = [json.dumps({"choices": [{"index": 0, "delta": {"tool_calls": [
                  {"index": 0, "id": "c1", "type": "function",
                   "function": {"name": "f", "arguments": arguments}}]}}]}),
              json.dumps({"choices": [{"index": 0, "delta": {},
                                       "finish_reason": "tool_calls"}]}),
              "[DONE]"]
    decoder = OpenAIStreamDecoder(message_id="msg_1", model="m", input_tokens=1)
    events, error = run_decoder(decoder, [frames])  # writes both JSON bodies
    assert error is None
    collector = Collector()
    collector.feed(events)
    assert collector.message.blocks[0].tool_input == {"_raw": arguments}


def test_a_whole_anthropic_error_body_is_the_upstream_error_not_an_empty_answer() -> None:
    decoder = AnthropicStreamDecoder(message_id="msg_1", model="m", input_tokens=1)
    with pytest.raises(UpstreamStreamError) as caught:
        decoder.feed_message({"type": "error", "error": {"type": "overloaded_error",
                                                         "message": "Overloaded"}})
    assert caught.value.status == 529 and caught.value.message == "Overloaded"

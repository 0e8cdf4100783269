"""OpenAI Chat Completions body -> canonical Request (protocols.md 2.2, 4.2, section 5)."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.canonical import (
    DocumentPart,
    ImagePart,
    Message,
    TextPart,
    Tool,
    ToolChoice,
    ToolResultPart,
    ToolUsePart,
)
from proxy.dialects.openai.request_parse import parse_request, wants_usage
from proxy.errors import InvalidRequest

HI = {"role": "user", "content": "Hi"}
FN: dict[str, Any] = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}
PNG = "data:image/png;base64,iVBORw0KGgo="


def body(**overrides: Any) -> dict[str, Any]:
    """A minimal valid body; overrides replace keys, and a value of ... deletes the key."""
    base: dict[str, Any] = {"model": "gpt-test", "messages": [HI]}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not ...}


def parse(**overrides: Any) -> Any:
    return parse_request(body(**overrides))


def user(*content: Any) -> dict[str, Any]:
    return {"role": "user", "content": list(content)}


def call(call_id: str, arguments: str, name: str = "get_weather") -> dict[str, Any]:
    return {"id": call_id, "type": "function",
            "function": {"name": name, "arguments": arguments}}


# ----------------------------------------------------------------------------- system


def test_leading_system_and_developer_messages_become_the_system_prompt() -> None:
    request = parse(messages=[
        {"role": "system", "content": "You are X."},
        {"role": "developer", "content": [{"type": "text", "text": "Be"},
                                          {"type": "text", "text": "brief."}]},
        HI, {"role": "system", "content": "Later rule."},
        {"role": "assistant", "content": "Hello"}])
    assert request.system == ("You are X.", "Be\n\nbrief.")
    assert request.messages == (
        Message("user", (TextPart("Hi"),)),
        Message("system", (TextPart("Later rule."),)),
        Message("assistant", (TextPart("Hello"),)))


# ---------------------------------------------------------------------- scalar fields


@pytest.mark.parametrize(("overrides", "attribute", "expected"), [
    ({"max_completion_tokens": 300, "max_tokens": 100}, "max_tokens", 300),
    ({"max_tokens": 100}, "max_tokens", 100),
    ({}, "max_tokens", None),
    ({"stop": "END"}, "stop_sequences", ("END",)),
    ({"stop": ["a", "b"]}, "stop_sequences", ("a", "b")),
    ({"stop": None}, "stop_sequences", ()),
    ({"temperature": 1.5, "top_p": 0.9}, "temperature", 1.5),
    ({"top_p": 1}, "top_p", 1.0),
    ({"stream": True}, "stream", True),
    ({"user": "u-1"}, "user_id", "u-1"),
    ({"safety_identifier": "s-1"}, "user_id", "s-1"),
    ({"model": ...}, "model", "default-model"),
    ({"reasoning_effort": "none"}, "reasoning_effort", None),
    ({"reasoning_effort": "minimal"}, "reasoning_effort", "low"),
    ({"reasoning_effort": "low"}, "reasoning_effort", "low"),
    ({"reasoning_effort": "medium"}, "reasoning_effort", "medium"),
    ({"reasoning_effort": "high"}, "reasoning_effort", "high"),
    ({"reasoning_effort": "xhigh"}, "reasoning_effort", "high"),
    ({"reasoning_effort": "max"}, "reasoning_effort", "high"),
    ({"response_format": {"type": "json_object"}}, "json_object", True),
    ({"response_format": {"type": "text"}}, "response_schema", None),
    ({"response_format": {"type": "json_schema", "json_schema": {
        "name": "o", "strict": True, "schema": {"type": "object"}}}},
     "response_schema", {"type": "object"}),
    ({"n": 1, "logprobs": False}, "dropped", ()),
    ({"seed": 1, "frequency_penalty": 0.5, "presence_penalty": 0.1, "logit_bias": {"1": 2},
      "store": True, "metadata": {"a": "b"}, "service_tier": "auto",
      "prediction": {"type": "content", "content": "x"}},
     "dropped", ("frequency_penalty", "logit_bias", "metadata", "prediction",
                 "presence_penalty", "seed", "service_tier", "store")),
])
def test_fields(overrides: dict[str, Any], attribute: str, expected: Any) -> None:
    request = parse_request(body(**overrides), default_model="default-model")
    assert getattr(request, attribute) == expected


def test_model_in_the_body_wins_over_the_default() -> None:
    assert parse_request(body(), default_model="default-model").model == "gpt-test"


def test_wants_usage() -> None:
    assert wants_usage({"stream_options": {"include_usage": True}})
    assert not wants_usage({"stream_options": {"include_usage": False}})
    assert not wants_usage({})


# ------------------------------------------------------------------------------ tools


@pytest.mark.parametrize(("choice", "expected"), [
    (None, None),
    ("auto", ToolChoice("auto")),
    ("required", ToolChoice("any")),
    ("none", ToolChoice("none")),
    ({"type": "function", "function": {"name": "get_weather"}}, ToolChoice("tool", "get_weather")),
    ({"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": [FN]}},
     ToolChoice("auto")),
    ({"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": [FN]}},
     ToolChoice("any")),
])
def test_tools_and_tool_choice(choice: Any, expected: ToolChoice | None) -> None:
    request = parse(tools=[FN, {"type": "function", "function": {"name": "ping"}}],
                    tool_choice=choice)
    assert request.tools == (
        Tool("get_weather", "Weather for a city", FN["function"]["parameters"]),
        Tool("ping", None, {"type": "object", "properties": {}}))
    assert request.tool_choice == expected and request.parallel_tool_calls is None


def test_parallel_tool_calls_false_and_no_choice_without_tools() -> None:
    assert parse(tools=[FN], parallel_tool_calls=False).parallel_tool_calls is False
    assert parse(tools=[FN], parallel_tool_calls=True).parallel_tool_calls is None
    bare = parse(tool_choice="required", parallel_tool_calls=False)
    assert (bare.tools, bare.tool_choice, bare.parallel_tool_calls) == ((), None, None)


def test_deprecated_functions_and_function_call() -> None:
    request = parse(functions=[FN["function"]], function_call={"name": "get_weather"},
                    messages=[HI, {"role": "assistant", "content": None, "function_call": {
                        "name": "get_weather", "arguments": '{"city": "Paris"}'}},
                        {"role": "function", "name": "get_weather", "content": "18C"}])
    assert [t.name for t in request.tools] == ["get_weather"]
    assert request.tool_choice == ToolChoice("tool", "get_weather")
    (use,) = request.messages[1].parts
    (result,) = request.messages[2].parts[:1]
    assert isinstance(use, ToolUsePart) and use.input == {"city": "Paris"}
    assert result == ToolResultPart(use.id, (TextPart("18C"),))


def test_deprecated_function_calls_over_two_rounds_keep_unique_paired_ids() -> None:
    # proxy bug: every deprecated function_call gets the id "call_0", so the second round
    # repeats a tool_use id and the Anthropic API answers 400 "tool_use ids must be unique".
    turn = [{"role": "assistant", "content": None,
             "function_call": {"name": "get_weather", "arguments": "{}"}},
            {"role": "function", "name": "get_weather", "content": "18C"}]
    request = parse(functions=[FN["function"]], messages=[HI, *turn, HI, *turn])
    uses = [p.id for m in request.messages for p in m.parts if isinstance(p, ToolUsePart)]
    results = [p.tool_use_id for m in request.messages for p in m.parts
               if isinstance(p, ToolResultPart)]
    assert len(set(uses)) == 2 and results == uses


# --------------------------------------------------------------------------- messages


def test_images_as_data_and_http_urls() -> None:
    request = parse(messages=[user(
        {"type": "text", "text": "look"},
        {"type": "image_url", "image_url": {"url": PNG, "detail": "high"}},
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4A"}},
        {"type": "image_url", "image_url": {"url": "https://x.test/a.webp"}})])
    assert request.messages[0].parts == (
        TextPart("look"), ImagePart(media_type="image/png", data="iVBORw0KGgo="),
        ImagePart(media_type="image/jpeg", data="/9j/4A"), ImagePart(url="https://x.test/a.webp"))


def test_pdf_file_part_becomes_a_document() -> None:
    request = parse(messages=[user({"type": "file", "file": {
        "file_data": "data:application/pdf;base64,JVBERi0=", "filename": "spec.pdf"}})])
    assert request.messages[0].parts == (
        DocumentPart(media_type="application/pdf", data="JVBERi0=", title="spec.pdf"),)


def test_assistant_text_and_tool_calls() -> None:
    request = parse(messages=[HI, {"role": "assistant", "content": "Let me check.", "tool_calls": [
        call("call_1", '{"city": "Paris"}'), call("call_2", "{not json"),
        call("call_3", ""), call("call_4", "[1, 2]")]}])
    assert request.messages[1] == Message("assistant", (
        TextPart("Let me check."),
        ToolUsePart("call_1", "get_weather", {"city": "Paris"}),
        ToolUsePart("call_2", "get_weather", {"_raw": "{not json"}),
        ToolUsePart("call_3", "get_weather", {}),
        ToolUsePart("call_4", "get_weather", {"_raw": "[1, 2]"})))


@pytest.mark.parametrize("content", [None, "", []])
def test_assistant_without_text_has_only_tool_calls(content: Any) -> None:
    request = parse(messages=[HI, {"role": "assistant", "content": content,
                                   "tool_calls": [call("c1", "{}")]}])
    assert request.messages[1].parts == (ToolUsePart("c1", "get_weather", {}),)


@pytest.mark.parametrize("message", [
    {"role": "assistant", "content": None, "refusal": "I can't help with that."},
    # proxy bug: a refusal content part carries its text in "refusal", not "text", and is
    # dropped today, so the assistant turn vanishes from the conversation.
    {"role": "assistant", "content": [{"type": "refusal", "refusal": "I can't help with that."}]},
])
def test_assistant_refusal_is_kept_as_text(message: dict[str, Any]) -> None:
    assert parse(messages=[HI, message]).messages[1] == Message(
        "assistant", (TextPart("I can't help with that."),))


def test_tool_messages_and_the_next_user_message_are_one_user_turn() -> None:
    request = parse(messages=[
        HI, {"role": "assistant", "content": None,
             "tool_calls": [call("call_a", "{}"), call("call_b", "{}")]},
        {"role": "tool", "tool_call_id": "call_a", "content": "18C"},
        {"role": "tool", "tool_call_id": "call_b", "content": [{"type": "text", "text": "20C"}]},
        {"role": "user", "content": "Thanks, and Rome?"}])
    assert len(request.messages) == 3
    assert request.messages[2] == Message("user", (
        ToolResultPart("call_a", (TextPart("18C"),)), ToolResultPart("call_b", (TextPart("20C"),)),
        TextPart("Thanks, and Rome?")))


# ------------------------------------------------------------------------------- 400s

TEXT = {"type": "text", "text": "x"}


@pytest.mark.parametrize(("overrides", "param"), [
    ({"n": 2}, "n"),
    ({"logprobs": True}, "logprobs"),
    ({"top_logprobs": 3}, "top_logprobs"),
    ({"web_search_options": "low"}, "web_search_options"),
    ({"audio": {"voice": "alloy", "format": "wav"}}, "audio"),
    ({"modalities": ["text", "audio"]}, "modalities"),
    ({"messages": [user({"type": "input_audio", "input_audio": {"data": "UklG", "format": "wav"}})]},
     "messages.0.content.0.type"),
    ({"tools": [{"type": "custom", "custom": {"name": "grammar"}}]}, "tools.0.type"),
    ({"messages": [user(TEXT, {"type": "image_url", "image_url": {
        "url": "data:image/bmp;base64,Qk0="}})]}, "messages.0.content.1.image_url.url"),
    ({"messages": [user({"type": "image_url", "image_url": {"url": "ftp://x/a.png"}})]},
     "messages.0.content.0.image_url.url"),
    ({"messages": [user({"type": "file", "file": {"file_id": "file-abc"}})]},
     "messages.0.content.0.file.file_data"),
    ({"messages": ...}, "messages"),
    ({"messages": "Hi"}, "messages"),
    ({"messages": ["Hi"]}, "messages.0"),
    ({"messages": [{"content": "Hi"}]}, "messages.0.role"),
    ({"messages": [{"role": "robot", "content": "Hi"}]}, "messages.0.role"),
    ({"messages": [{"role": "user", "content": 5}]}, "messages.0.content"),
    ({"messages": [user({"type": "text", "text": 5})]}, "messages.0.content.0.text"),
    ({"messages": [HI, {"role": "tool", "content": "18C"}]}, "messages.1.tool_call_id"),
    ({"messages": [HI, {"role": "assistant", "tool_calls": [{"id": "c", "function": "f"}]}]},
     "messages.1.tool_calls.0.function"),
    # proxy bug: a tool call that is not an object crashes with TypeError (a 500)
    ({"messages": [HI, {"role": "assistant", "tool_calls": [5]}]}, "messages.1.tool_calls.0"),
    ({"model": 7}, "model"),
    ({"max_tokens": "100"}, "max_tokens"),
    ({"max_completion_tokens": 0}, "max_completion_tokens"),
    ({"temperature": "hot"}, "temperature"),
    ({"top_p": True}, "top_p"),
    ({"stream": "yes"}, "stream"),
    ({"stop": 5}, "stop"),
    ({"stop": ["a", 1]}, "stop"),
    ({"user": 5}, "user"),
    ({"tools": {"a": 1}}, "tools"),
    ({"tools": [{"type": "function"}]}, "tools.0.function"),
    ({"tools": [FN], "tool_choice": "sometimes"}, "tool_choice"),
    ({"tools": [FN], "tool_choice": 5}, "tool_choice"),
    ({"tools": [FN], "tool_choice": {"type": "function"}}, "tool_choice.function.name"),
    ({"reasoning_effort": "extreme"}, "reasoning_effort"),
    ({"response_format": "json"}, "response_format"),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "o"}}},
     "response_format.json_schema.schema"),
    ({"functions": {"name": "f"}}, "functions"),
])
def test_what_cannot_be_honoured_is_a_400_naming_the_field(overrides: dict[str, Any],
                                                           param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse(**overrides)
    assert info.value.status == 400 and info.value.param == param
    assert param in info.value.message


def test_no_model_and_no_default_is_a_400() -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_request(body(model=...))
    assert info.value.param == "model"


def test_nested_reasoning_effort_as_newer_clients_send_it() -> None:
    request = parse_request({"model": "m", "messages": [{"role": "user", "content": "hi"}],
                             "reasoning": {"effort": "high"}})
    assert request.reasoning_effort == "high" and "reasoning" not in request.dropped

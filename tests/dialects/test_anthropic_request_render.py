"""canonical Request -> Anthropic Messages body (protocols.md 4.2, section 5): every body
keeps the rules the real API enforces, so a translated request never fails upstream."""

from __future__ import annotations

import re
from typing import Any

import pytest

from proxy.canonical import (
    DocumentPart,
    ImagePart,
    Message,
    Part,
    Request,
    TextPart,
    ThinkingPart,
    Tool,
    ToolChoice,
    ToolResultPart,
    ToolUsePart,
)
from proxy.dialects.anthropic.request_render import (
    JSON_OBJECT_INSTRUCTION,
    RenderOptions,
    render_request,
    tool_id,
)
from tests.fakes.anthropic_upstream import check_request

WEATHER = Tool("get_weather", "Weather for a city",
               {"type": "object", "properties": {"city": {"type": "string"}}})
ACCEPTED = {"model", "messages", "max_tokens", "system", "stop_sequences", "temperature",
            "top_p", "tools", "tool_choice", "thinking", "output_config", "metadata", "stream"}
HEADERS = {"x-api-key": "k", "anthropic-version": "2023-06-01"}


def user(*parts: Part) -> Message:
    return Message("user", parts)


def assistant(*parts: Part) -> Message:
    return Message("assistant", parts)


def render(*messages: Message, max_tokens_default: int = 16384, **fields: Any) -> dict[str, Any]:
    request = Request(model="gpt-4o", messages=messages or (user(TextPart("Hi")),), **fields)
    body = render_request(request, RenderOptions(model="claude-up",
                                                 default_max_tokens=max_tokens_default))
    assert set(body) <= ACCEPTED, set(body) - ACCEPTED
    assert check_request(HEADERS, body) is None, check_request(HEADERS, body)
    return body


def msgs(*messages: Message, **fields: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = render(*messages, **fields)["messages"]
    return out


# ----------------------------------------------------------------------- scalar fields


def test_minimal_body() -> None:
    assert render() == {"model": "claude-up", "max_tokens": 16384, "stream": True,
                        "messages": [{"role": "user", "content": [{"type": "text",
                                                                   "text": "Hi"}]}]}


@pytest.mark.parametrize(("fields", "expected"), [
    ({"system": ("You are X.", "Be brief.")}, {"system": "You are X.\n\nBe brief."}),
    ({"system": ("You are X.",), "json_object": True},
     {"system": "You are X.\n\n" + JSON_OBJECT_INSTRUCTION}),
    ({"json_object": True}, {"system": JSON_OBJECT_INSTRUCTION}),
    ({"max_tokens": 500}, {"max_tokens": 500}),
    ({"temperature": 1.7}, {"temperature": 1.0}),
    ({"temperature": -0.5}, {"temperature": 0.0}),
    ({"temperature": 0.3, "top_p": 0.9}, {"temperature": 0.3, "top_p": 0.9}),
    ({"stop_sequences": ("END", "STOP")}, {"stop_sequences": ["END", "STOP"]}),
    ({"user_id": "user-1"}, {"metadata": {"user_id": "user-1"}}),
    ({"response_schema": {"type": "object"}},
     {"output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}}}),
    ({"stream": False}, {"stream": True}),
])
def test_fields(fields: dict[str, Any], expected: dict[str, Any]) -> None:
    body = render(**fields)
    assert {k: body.get(k) for k in expected} == expected


def test_every_field_at_once_uses_only_keys_the_api_accepts() -> None:
    body = render(system=("s",), max_tokens=4096, temperature=0.5, top_p=0.9,
                  stop_sequences=("X",), tools=(WEATHER,), tool_choice=ToolChoice("auto"),
                  parallel_tool_calls=False, reasoning_effort="low",
                  response_schema={"type": "object"}, json_object=True, user_id="u",
                  dropped=("seed",))
    assert set(body) == ACCEPTED - {"temperature", "top_p"}  # thinking is on


def test_absent_fields_are_not_sent() -> None:
    body = render()
    for key in ("system", "stop_sequences", "temperature", "top_p", "tools", "tool_choice",
                "thinking", "output_config", "metadata"):
        assert key not in body


# ------------------------------------------------------------------------------ tools


def test_tools() -> None:
    body = render(tools=(WEATHER, Tool("ping", None, {"type": "object", "properties": {}})))
    assert body["tools"] == [
        {"name": "get_weather", "description": "Weather for a city",
         "input_schema": WEATHER.input_schema},
        {"name": "ping", "input_schema": {"type": "object", "properties": {}}}]


@pytest.mark.parametrize(("choice", "parallel", "expected"), [
    (None, None, None),
    (ToolChoice("auto"), None, {"type": "auto"}),
    (ToolChoice("any"), None, {"type": "any"}),
    (ToolChoice("none"), None, {"type": "none"}),
    (ToolChoice("tool", "get_weather"), None, {"type": "tool", "name": "get_weather"}),
    (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
    (ToolChoice("any"), False, {"type": "any", "disable_parallel_tool_use": True}),
    (ToolChoice("tool", "get_weather"), False,
     {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True}),
    (ToolChoice("none"), False, {"type": "none"}),
    (ToolChoice("auto"), True, {"type": "auto"}),
])
def test_tool_choice(choice: ToolChoice | None, parallel: bool | None, expected: Any) -> None:
    body = render(tools=(WEATHER,), tool_choice=choice, parallel_tool_calls=parallel)
    assert body.get("tool_choice") == expected


def test_no_tool_choice_without_tools() -> None:
    body = render(tool_choice=ToolChoice("any"), parallel_tool_calls=False)
    assert "tools" not in body and "tool_choice" not in body


# --------------------------------------------------------------------------- thinking


@pytest.mark.parametrize(("effort", "max_tokens", "budget"), [
    ("low", None, 2048), ("medium", None, 8192), ("high", None, 16383),
    ("high", 10000, 9999), ("low", 1025, 1024), ("low", 1024, None), ("high", 500, None)])
def test_reasoning_effort_becomes_a_thinking_budget_under_max_tokens(
        effort: str, max_tokens: int | None, budget: int | None) -> None:
    body = render(reasoning_effort=effort, max_tokens=max_tokens, temperature=0.2, top_p=0.5)
    if budget is None:  # no room for the minimum budget: no thinking, sampling kept
        assert "thinking" not in body and body["temperature"] == 0.2
        return
    assert body["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert body["thinking"]["budget_tokens"] < body["max_tokens"]
    assert "temperature" not in body and "top_p" not in body


@pytest.mark.parametrize(("choice", "thinks"), [
    (ToolChoice("any"), False), (ToolChoice("tool", "get_weather"), False),
    (ToolChoice("auto"), True), (ToolChoice("none"), True), (None, True)])
def test_a_forced_tool_choice_drops_thinking(choice: ToolChoice | None, thinks: bool) -> None:
    body = render(tools=(WEATHER,), tool_choice=choice, reasoning_effort="medium")
    assert ("thinking" in body) == thinks


def test_thinking_parts_only_go_back_signed() -> None:
    out = msgs(user(TextPart("2+2?")),
               assistant(ThinkingPart("hm", "sig"), ThinkingPart("from elsewhere", ""),
                         TextPart("4")),
               user(TextPart("and 3+3?")))
    assert out[1]["content"] == [{"type": "thinking", "thinking": "hm", "signature": "sig"},
                                 {"type": "text", "text": "4"}]


# --------------------------------------------------------------------------- messages


def test_empty_text_parts_never_make_empty_blocks_or_messages() -> None:
    out = msgs(user(TextPart(""), TextPart("Hi")), assistant(TextPart("")),
               assistant(TextPart(""), ToolUsePart("c1", "get_weather", {})),
               user(ToolResultPart("c1", (TextPart(""),)), TextPart("")))
    assert out == [
        {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "c1", "name": "get_weather", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "c1"}]}]


def test_whitespace_only_text_never_stands_alone_in_a_message() -> None:
    # The API rejects a message whose only text is whitespace ("text content blocks must
    # contain non-whitespace text"). proxy bug: " \n" is sent as is.
    out = msgs(user(TextPart("Hi")), assistant(TextPart(" \n")), user(TextPart("go on")))
    for message in out:
        texts = [b["text"] for b in message["content"] if b["type"] == "text"]
        assert not texts or any(t.strip() for t in texts), message


def test_a_final_assistant_prefill_loses_its_trailing_whitespace() -> None:
    # The API rejects "final assistant content cannot end with trailing whitespace".
    # proxy bug: the prefill "Say: " is sent as is.
    out = msgs(user(TextPart("Say world")), assistant(TextPart("Say: ")))
    assert out[-1] == {"role": "assistant", "content": [{"type": "text", "text": "Say:"}]}


def test_consecutive_user_turns_merge_with_tool_results_first() -> None:
    out = msgs(user(TextPart("weather?")),
               assistant(ToolUsePart("call_a", "get_weather", {"city": "Paris"}),
                         ToolUsePart("call_b", "get_weather", {"city": "Rome"})),
               user(ToolResultPart("call_a", (TextPart("18C"),))),
               user(ToolResultPart("call_b", (TextPart("20C"),), is_error=True)),
               user(TextPart("thanks")))
    assert out[2] == {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "call_a",
         "content": [{"type": "text", "text": "18C"}]},
        {"type": "tool_result", "tool_use_id": "call_b",
         "content": [{"type": "text", "text": "20C"}], "is_error": True},
        {"type": "text", "text": "thanks"}]}
    assert len(out) == 3


@pytest.mark.parametrize("raw", ["call.1:abc", "call|x", "a b", "", "fc_1/2"])
def test_bad_tool_ids_are_sanitized_the_same_in_use_and_result(raw: str) -> None:
    out = msgs(user(TextPart("go")), assistant(ToolUsePart(raw, "get_weather", {})),
               user(ToolResultPart(raw, (TextPart("ok"),))))
    use, result = out[1]["content"][0]["id"], out[2]["content"][0]["tool_use_id"]
    assert use == result == tool_id(raw) and re.fullmatch(r"[a-zA-Z0-9_-]+", use)


def test_valid_tool_ids_are_unchanged_and_distinct_bad_ids_stay_distinct() -> None:
    for raw in ("call_abc123", "toolu_01NRLabsLyVHZPKxbKvkfSMn", "a-b_C"):
        assert tool_id(raw) == raw
    assert tool_id("a.b") != tool_id("a:b")
    assert tool_id("call.1:abc") == tool_id("call.1:abc")


def test_images_and_documents() -> None:
    (message,) = msgs(user(
        ImagePart(media_type="image/png", data="iVBOR"), ImagePart(url="https://x.test/a.png"),
        DocumentPart(media_type="application/pdf", data="JVBER", title="spec.pdf"),
        DocumentPart(url="https://x.test/a.pdf"), DocumentPart(text="plain body"),
        TextPart("describe")))
    assert message["content"] == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                     "data": "iVBOR"}},
        {"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}},
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                        "data": "JVBER"}, "title": "spec.pdf"},
        {"type": "document", "source": {"type": "url", "url": "https://x.test/a.pdf"}},
        {"type": "document", "source": {"type": "text", "media_type": "text/plain",
                                        "data": "plain body"}},
        {"type": "text", "text": "describe"}]


def test_a_conversation_that_starts_with_the_assistant_gets_a_user_turn_first() -> None:
    out = msgs(assistant(TextPart("Hello! How can I help?")), user(TextPart("Hi")))
    assert out[0]["role"] == "user" and out[0]["content"][0]["text"].strip()
    assert [m["role"] for m in out] == ["user", "assistant", "user"]

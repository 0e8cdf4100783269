"""canonical Request -> OpenAI Chat Completions body (protocols.md 4.1)."""

from __future__ import annotations

import json
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
from proxy.dialects.openai.request_render import Rendered, RenderOptions, render_request

LONG = "mcp__some_long_server_name__some_really_long_tool_name_for_testing_limits"
WEATHER = Tool("get_weather", "Weather for a city", {
    "$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
    "properties": {"city": {"type": "string"}}, "required": ["city"],
    "additionalProperties": False})


def user(*parts: Part) -> Message:
    return Message("user", parts)


def assistant(*parts: Part) -> Message:
    return Message("assistant", parts)


def render(*messages: Message, options: RenderOptions | None = None, **fields: Any) -> Rendered:
    request = Request(model="claude-opus-5-5", messages=messages or (user(TextPart("Hi")),),
                      **fields)
    return render_request(request, options or RenderOptions(model="gpt-test"))


def msgs(*messages: Message, **fields: Any) -> list[dict[str, Any]]:
    return render(*messages, **fields).body["messages"]


# --------------------------------------------------------------------------- messages


def test_system_joined_first_and_later_system_messages_merged_into_it() -> None:
    turns = (user(TextPart("Hi")), Message("system", (TextPart("# Env"), TextPart("cwd"))),
             assistant(TextPart("Hello")))
    out = msgs(*turns, system=("You are X.", "Be brief."))
    assert out == [
        {"role": "system", "content": "You are X.\n\nBe brief.\n\n# Env\n\ncwd"},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
    ]
    inline = render(*turns, system=("You are X.",), options=RenderOptions(
        model="gpt-test", inline_system_messages=True)).body["messages"]
    assert inline == [
        {"role": "system", "content": "You are X."},
        {"role": "user", "content": "Hi"},
        {"role": "system", "content": "# Env\n\ncwd"},
        {"role": "assistant", "content": "Hello"},
    ]


def test_no_system_message_without_system() -> None:
    assert msgs(user(TextPart("Hi"))) == [{"role": "user", "content": "Hi"}]


def test_tool_results_become_tool_messages_before_rest_of_turn() -> None:
    out = msgs(
        assistant(ToolUsePart("call_a", "get_weather", {"city": "Paris"}),
                  ToolUsePart("call_b", "get_weather", {"city": "Oslo"})),
        user(TextPart("before"),
             ToolResultPart("call_a", (TextPart("18C"), TextPart("sunny"))),
             ToolResultPart("call_b", (TextPart("city not found"),), is_error=True),
             TextPart("after")),
        tools=(WEATHER,))
    assert out[1:] == [
        {"role": "tool", "tool_call_id": "call_a", "content": "18C\n\nsunny"},
        {"role": "tool", "tool_call_id": "call_b", "content": "Error: city not found"},
        {"role": "user", "content": "before\n\nafter"},
    ]


def test_turn_of_only_tool_results_has_no_user_message() -> None:
    out = msgs(assistant(ToolUsePart("c1", "f", {})), user(ToolResultPart("c1", ())))
    assert [m["role"] for m in out] == ["assistant", "tool"]
    assert out[1]["tool_call_id"] == "c1" and isinstance(out[1]["content"], str)


def test_images_in_tool_result_move_to_following_user_message() -> None:
    image = ImagePart(media_type="image/png", data="iVBOR")
    out = msgs(assistant(ToolUsePart("c1", "Read", {"file_path": "/a.png"})),
               user(ToolResultPart("c1", (TextPart("the screenshot"), image))))
    tool, follow = out[1], out[2]
    assert tool == {"role": "tool", "tool_call_id": "c1", "content": "the screenshot"}
    assert follow["role"] == "user"
    label, picture = follow["content"]
    assert label["type"] == "text" and "c1" in label["text"]
    assert picture == {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}}


def test_pdf_in_tool_result_moves_to_following_user_message() -> None:
    # Claude Code's Read tool answers a .pdf with a document block inside the tool_result.
    # proxy bug: today the PDF is dropped silently and the tool message is "".
    pdf = DocumentPart(media_type="application/pdf", data="JVBER")
    out = msgs(assistant(ToolUsePart("c1", "Read", {"file_path": "/spec.pdf"})),
               user(ToolResultPart("c1", (pdf,))))
    assert [m["role"] for m in out] == ["assistant", "tool", "user"]
    assert out[1]["tool_call_id"] == "c1"
    assert {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBER",
                                     "filename": "document.pdf"}} in out[2]["content"]


def test_images_base64_and_url() -> None:
    out = msgs(user(TextPart("look"), ImagePart(media_type="image/jpeg", data="/9j/4A"),
                    ImagePart(url="https://x.test/a.png")))
    assert out == [{"role": "user", "content": [
        {"type": "text", "text": "look"},
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4A"}},
        {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}]}]


def test_pdf_document_becomes_file_part() -> None:
    doc = DocumentPart(media_type="application/pdf", data="JVBER", title="spec.pdf")
    (message,) = msgs(user(doc, TextPart("summarise")))
    assert message["content"] == [
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBER",
                                  "filename": "spec.pdf"}},
        {"type": "text", "text": "summarise"}]


def test_text_document_becomes_text() -> None:
    (message,) = msgs(user(DocumentPart(text="the body", title="notes.txt"), TextPart("ok?")))
    assert message == {"role": "user", "content": "notes.txt\n\nthe body\n\nok?"}


def test_assistant_text_and_tool_use() -> None:
    (_, message) = msgs(user(TextPart("weather?")), assistant(
        TextPart("Let me check."), ToolUsePart("toolu_1", "get_weather", {"city": "Paris"})),
        tools=(WEATHER,))
    assert message["role"] == "assistant" and message["content"] == "Let me check."
    (call,) = message["tool_calls"]
    assert call["id"] == "toolu_1" and call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    assert isinstance(call["function"]["arguments"], str)
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}


def test_assistant_tool_use_without_text_has_null_content() -> None:
    (message,) = msgs(assistant(ToolUsePart("t", "f", {})))
    assert message["content"] is None and message["tool_calls"][0]["function"]["arguments"] == "{}"


def test_thinking_dropped_by_default_replayed_on_request() -> None:
    turn = assistant(ThinkingPart("ponder", ""), TextPart("Answer"))
    assert msgs(turn) == [{"role": "assistant", "content": "Answer"}]
    replayed = render(turn, options=RenderOptions(model="m", replay_reasoning=True))
    assert replayed.body["messages"] == [
        {"role": "assistant", "content": "Answer", "reasoning_content": "ponder"}]
    assert msgs(assistant(ThinkingPart("only thinking", "sig"))) == []


# ----------------------------------------------------------------------------- tools


def test_tools_become_functions_without_schema_uri() -> None:
    body = render(tools=(WEATHER, Tool("ping", None, {"type": "object"}))).body
    assert body["tools"] == [
        {"type": "function", "function": {
            "name": "get_weather", "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                           "required": ["city"], "additionalProperties": False}}},
        {"type": "function", "function": {"name": "ping", "parameters": {"type": "object"}}}]
    assert "$schema" in WEATHER.input_schema  # the canonical tool is left alone


@pytest.mark.parametrize(("choice", "expected"), [
    (ToolChoice("auto"), "auto"),
    (ToolChoice("any"), "required"),
    (ToolChoice("none"), "none"),
    (ToolChoice("tool", "get_weather"), {"type": "function", "function": {"name": "get_weather"}}),
])
def test_tool_choice(choice: ToolChoice, expected: Any) -> None:
    assert render(tools=(WEATHER,), tool_choice=choice).body["tool_choice"] == expected


def test_parallel_tool_calls_only_with_tools() -> None:
    with_tools = render(tools=(WEATHER,), parallel_tool_calls=False).body
    assert with_tools["parallel_tool_calls"] is False
    without = render(parallel_tool_calls=False, tool_choice=ToolChoice("any")).body
    assert "parallel_tool_calls" not in without and "tool_choice" not in without
    assert "tools" not in without  # an empty tools array is rejected upstream, so omitted


def test_long_tool_names_shortened_and_mapped_back() -> None:
    twin = LONG.replace("limits", "limbos")
    rendered = render(
        user(TextPart("go")),
        assistant(ToolUsePart("t1", LONG, {"filter": "is:open"})),
        user(ToolResultPart("t1", (TextPart("[]"),))),
        tools=(WEATHER, Tool(LONG, "issues", {"type": "object"}),
               Tool(twin, "twin", {"type": "object"})),
        tool_choice=ToolChoice("tool", LONG))
    body, names = rendered.body, rendered.tool_names
    upstream = [t["function"]["name"] for t in body["tools"]]
    assert all(len(n) <= 64 for n in upstream)
    assert upstream[0] == "get_weather" and len(set(upstream)) == 3
    assert names == {upstream[1]: LONG, upstream[2]: twin}
    assert body["tool_choice"] == {"type": "function", "function": {"name": upstream[1]}}
    assert body["messages"][1]["tool_calls"][0]["function"]["name"] == upstream[1]
    again = render(tools=(Tool(LONG, "issues", {"type": "object"}),)).tool_names
    assert list(again) == [upstream[1]]  # stable across requests


def test_no_name_map_when_names_fit() -> None:
    assert render(tools=(WEATHER,)).tool_names == {}


# ----------------------------------------------------------------------- scalar fields


def test_stop_sequences_become_stop() -> None:
    assert render(stop_sequences=("END", "STOP")).body["stop"] == ["END", "STOP"]
    assert "stop" not in render().body


@pytest.mark.parametrize(("options", "field", "value"), [
    (RenderOptions(model="m"), "max_tokens", 128000),
    (RenderOptions(model="m", max_tokens_cap=8192), "max_tokens", 8192),
    (RenderOptions(model="m", max_tokens_field="max_completion_tokens"),
     "max_completion_tokens", 128000),
])
def test_max_tokens_field_and_cap(options: RenderOptions, field: str, value: int) -> None:
    body = render(options=options, max_tokens=128000).body
    assert body[field] == value
    assert ({"max_tokens", "max_completion_tokens"} - {field}).isdisjoint(body)


def test_max_tokens_below_cap_and_absent() -> None:
    assert render(options=RenderOptions(model="m", max_tokens_cap=8192),
                  max_tokens=100).body["max_tokens"] == 100
    body = render().body
    assert "max_tokens" not in body and "max_completion_tokens" not in body


def test_always_streams_with_usage_and_uses_model_from_options() -> None:
    body = render(stream=False, temperature=0.3, top_p=0.9).body
    assert body["model"] == "gpt-test"
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert (body["temperature"], body["top_p"]) == (0.3, 0.9)


def test_reasoning_effort_and_response_format() -> None:
    schema = {"type": "object", "properties": {"title": {"type": "string"}}}
    body = render(reasoning_effort="medium", response_schema=schema).body
    assert body["reasoning_effort"] == "medium"
    assert body["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "output", "schema": schema, "strict": True}}
    off = render(options=RenderOptions(model="m", send_reasoning_effort=False),
                 reasoning_effort="high").body
    assert "reasoning_effort" not in off


def test_user_from_metadata_user_id() -> None:
    assert render(user_id="user-123").body["user"] == "user-123"
    claude_code_id = json.dumps({"device_id": "f" * 64, "account_uuid": "",
                                 "session_id": "3b2f6c1e-9a4d-4c7b-8e21-5d0f7a9c1b42"})
    hashed = render(user_id=claude_code_id).body["user"]
    assert len(hashed) <= 64 and "device_id" not in hashed
    assert hashed == render(user_id=claude_code_id).body["user"]
    assert "user" not in render().body

"""Anthropic Messages body -> canonical Request: strict validation, lenient extras."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.canonical import (
    DocumentPart,
    ImagePart,
    Message,
    TextPart,
    ThinkingPart,
    ToolChoice,
    ToolResultPart,
    ToolUsePart,
)
from proxy.dialects.anthropic.request_parse import parse_request
from proxy.errors import InvalidRequest

TOOL = {"name": "get_weather", "description": "Weather for a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}


def body(**overrides: Any) -> dict[str, Any]:
    """A minimal valid body; overrides replace keys, and a value of ... deletes the key."""
    base: dict[str, Any] = {"model": "claude-opus-5-5", "max_tokens": 1024,
                            "messages": [{"role": "user", "content": "Hi"}]}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not ...}


# ------------------------------------------------------------------------- validation

HI = {"role": "user", "content": "Hi"}


@pytest.mark.parametrize(("overrides", "param"), [
    ({"model": ...}, "model"),
    ({"model": 7}, "model"),
    ({"max_tokens": ...}, "max_tokens"),
    ({"max_tokens": "1024"}, "max_tokens"),
    ({"max_tokens": True}, "max_tokens"),
    ({"max_tokens": -1}, "max_tokens"),
    ({"messages": ...}, "messages"),
    ({"messages": {"role": "user", "content": "Hi"}}, "messages"),
    ({"messages": [HI, {"role": "tool", "content": "x"}]}, "messages.1.role"),
    ({"messages": [HI, {"content": "x"}]}, "messages.1.role"),
    ({"messages": ["Hi"]}, "messages.0"),
    ({"messages": [{"role": "user", "content": 5}]}, "messages.0.content"),
    ({"messages": [{"role": "user", "content": [{"type": "text", "text": "a"},
                                                 {"type": "text", "text": 3}]}]},
     "messages.0.content.1.text"),
    ({"messages": [{"role": "user", "content": [{"text": "a"}]}]}, "messages.0.content.0.type"),
    ({"messages": [{"role": "assistant", "content": [{"type": "tool_use", "name": "f",
                                                      "input": {}}]}]},
     "messages.0.content.0.id"),
    ({"messages": [{"role": "user", "content": [{"type": "tool_result", "content": "x"}]}]},
     "messages.0.content.0.tool_use_id"),
    ({"tools": [{"description": "no name", "input_schema": {"type": "object"}}]}, "tools.0.name"),
    ({"tools": "get_weather"}, "tools"),
    ({"tools": [TOOL], "tool_choice": {"type": "sometimes"}}, "tool_choice.type"),
    ({"tools": [TOOL], "tool_choice": {"type": "tool"}}, "tool_choice.name"),
    ({"system": 42}, "system"),
    # proxy bugs: both currently escape as TypeError (a 500), not a 400
    ({"thinking": {"type": "enabled", "budget_tokens": "8000"}}, "thinking.budget_tokens"),
    ({"messages": [{"role": "assistant", "content": [{"type": "thinking", "thinking": 5}]}]},
     "messages.0.content.0.thinking"),
    ({"system": [{"type": "text"}]}, "system.0"),
    ({"stream": "yes"}, "stream"),
    ({"temperature": "hot"}, "temperature"),
    ({"stop_sequences": "END"}, "stop_sequences"),
])
def test_malformed_body_names_the_field(overrides: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_request(body(**overrides))
    assert info.value.param == param
    assert info.value.status == 400
    assert param in info.value.message


def test_count_tokens_body_needs_no_max_tokens() -> None:
    request = parse_request(body(max_tokens=...), for_counting=True)
    assert request.max_tokens is None
    with pytest.raises(InvalidRequest):
        parse_request(body(max_tokens=...))


# --------------------------------------------------------------------------- leniency


def test_unknown_fields_and_block_types_are_dropped_and_listed() -> None:
    request = parse_request(body(
        top_k=5, context_management={"edits": []}, safeguards=[], service_tier="auto",
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "Hi", "cache_control": {}},
                                         {"type": "search_result", "source": "x"}]},
            {"role": "assistant", "content": [{"type": "redacted_thinking", "data": "abc"},
                                              {"type": "text", "text": "Hello"}]},
        ]))
    assert request.messages == (Message("user", (TextPart("Hi"),)),
                                Message("assistant", (TextPart("Hello"),)))
    assert set(request.dropped) == {
        "context_management", "safeguards", "service_tier", "top_k",
        "messages.0.content.1:search_result", "messages.1.content.0:redacted_thinking"}


def test_billing_block_stripped_and_system_blocks_kept_in_order() -> None:
    request = parse_request(body(system=[
        {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.330.440; "
                                 "cc_entrypoint=sdk-cli;"},
        {"type": "text", "text": "You are a Claude agent.", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "Be brief."}]))
    assert request.system == ("You are a Claude agent.", "Be brief.")
    assert parse_request(body(system="Plain.")).system == ("Plain.",)
    assert parse_request(body(system="")).system == ()


@pytest.mark.parametrize("content", [[], "", [{"type": "text", "text": ""}]])
def test_empty_system_message_is_dropped(content: Any) -> None:
    request = parse_request(body(messages=[
        {"role": "user", "content": "Hi"},
        {"role": "system", "content": content, "output_config": {"effort": "medium"}}]))
    assert [m.role for m in request.messages] == ["user"]


def test_system_message_kept_in_place() -> None:
    request = parse_request(body(messages=[
        {"role": "user", "content": "Hi"},
        {"role": "system", "content": [{"type": "text", "text": "# Environment"}],
         "output_config": {"effort": "medium"}},
        {"role": "assistant", "content": "Hello"}]))
    assert [m.role for m in request.messages] == ["user", "system", "assistant"]
    assert request.messages[1].parts == (TextPart("# Environment"),)


def test_blocks_become_parts() -> None:
    request = parse_request(body(messages=[
        {"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": "iVBOR"}},
            {"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}},
            {"type": "document", "title": "spec.pdf",
             "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBER"}},
            {"type": "document", "source": {"type": "text", "media_type": "text/plain",
                                            "data": "plain doc"}}]},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "hmm", "signature": ""},
            {"type": "tool_use", "id": "toolu_1", "name": "ToolSearch",
             "input": {"query": "select:WebFetch"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "is_error": False,
             "cache_control": {"type": "ephemeral"},
             "content": [{"type": "tool_reference", "tool_name": "WebFetch"},
                         {"type": "text", "text": "Tool loaded."}]}]}]))
    user, assistant, result = request.messages
    assert user.parts == (
        ImagePart(media_type="image/png", data="iVBOR"), ImagePart(url="https://x.test/a.png"),
        DocumentPart(media_type="application/pdf", data="JVBER", title="spec.pdf"),
        DocumentPart(text="plain doc"))
    assert assistant.parts == (ThinkingPart("hmm", ""),
                               ToolUsePart("toolu_1", "ToolSearch", {"query": "select:WebFetch"}))
    (part,) = result.parts
    assert isinstance(part, ToolResultPart) and part.tool_use_id == "toolu_1"
    assert not part.is_error
    assert [type(p) for p in part.content] == [TextPart, TextPart]
    assert "WebFetch" in part.content[0].text  # type: ignore[union-attr]
    assert part.content[1] == TextPart("Tool loaded.")


# ---------------------------------------------------------------------- translations


@pytest.mark.parametrize(("thinking", "output_config", "effort"), [
    ({"type": "enabled", "budget_tokens": 1024}, None, "low"),
    ({"type": "enabled", "budget_tokens": 8000}, None, "medium"),
    ({"type": "enabled", "budget_tokens": 31999, "display": "updates"}, None, "high"),
    ({"type": "adaptive", "display": "updates"}, {"effort": "medium"}, "medium"),
    ({"type": "adaptive"}, {"effort": "low"}, "low"),
    ({"type": "adaptive"}, {"effort": "xhigh"}, "high"),
    ({"type": "adaptive"}, {"effort": "max"}, "high"),
    ({"type": "disabled"}, {"effort": "high"}, None),
    ({"type": "disabled"}, None, None),
    (None, None, None),
])
def test_reasoning_effort(thinking: Any, output_config: Any, effort: str | None) -> None:
    overrides = {"thinking": thinking, "output_config": output_config}
    request = parse_request(body(**{k: v for k, v in overrides.items() if v is not None}))
    assert request.reasoning_effort == effort


def test_output_config_format_becomes_response_schema() -> None:
    schema = {"type": "object", "properties": {"title": {"type": "string"}},
              "required": ["title"], "additionalProperties": False}
    request = parse_request(body(output_config={"format": {"type": "json_schema",
                                                           "schema": schema}}))
    assert request.response_schema == schema
    assert parse_request(body(output_config={"effort": "low"})).response_schema is None


@pytest.mark.parametrize(("choice", "expected", "parallel"), [
    ({"type": "auto"}, ToolChoice("auto"), None),
    ({"type": "any", "disable_parallel_tool_use": True}, ToolChoice("any"), False),
    ({"type": "tool", "name": "get_weather"}, ToolChoice("tool", "get_weather"), None),
    ({"type": "none"}, ToolChoice("none"), None),
    ({"type": "auto", "disable_parallel_tool_use": False}, ToolChoice("auto"), None),
])
def test_tool_choice(choice: dict[str, Any], expected: ToolChoice, parallel: bool | None) -> None:
    request = parse_request(body(tools=[TOOL], tool_choice=choice))
    assert request.tool_choice == expected
    assert request.parallel_tool_calls is parallel


def test_tool_choice_ignored_without_tools() -> None:
    request = parse_request(body(tool_choice={"type": "any", "disable_parallel_tool_use": True}))
    assert request.tool_choice is None and request.parallel_tool_calls is None


def test_server_tools_and_placeholder_dropped_deferred_tools_kept() -> None:
    request = parse_request(body(tools=[
        TOOL,
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 5},
        {"name": "DeferredToolPlaceholder", "description": "never call",
         "input_schema": {"type": "object", "properties": {}}, "defer_loading": True},
        {"name": "WebFetch", "description": "Fetch a URL", "defer_loading": True,
         "input_schema": {"type": "object", "properties": {"url": {"type": "string"}}}},
        {"type": "custom", "name": "custom_one", "input_schema": {"type": "object"}}]))
    assert [t.name for t in request.tools] == ["get_weather", "WebFetch", "custom_one"]
    # Web search is kept apart for the proxy's own loop (proxy/web_tools), not dropped.
    assert request.server_tools == (
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 5},)
    assert "tools.1:web_search_20250305" not in request.dropped
    assert "tools.2:DeferredToolPlaceholder" in request.dropped


def test_scalar_fields() -> None:
    request = parse_request(body(
        stream=True, temperature=0.2, top_p=1, stop_sequences=["END"],
        metadata={"user_id": '{"device_id":"ab","account_uuid":"","session_id":"s"}'}))
    assert request.stream is True
    assert (request.temperature, request.top_p) == (0.2, 1.0)
    assert request.stop_sequences == ("END",)
    assert request.user_id == '{"device_id":"ab","account_uuid":"","session_id":"s"}'
    assert parse_request(body()).stream is False
    assert parse_request(body(metadata={"user_id": ""})).user_id is None

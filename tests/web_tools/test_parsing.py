"""The request parsers keep what the web tool loop needs: Anthropic's web server tools (other
server tools are still dropped), OpenAI's ``web_search_options``, and an earlier answer's
server tool blocks as a call and its result, the assistant turn split at each result."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from proxy.canonical import Message, TextPart, ToolChoice, ToolResultPart, ToolUsePart
from proxy.dialects.anthropic.request_parse import parse_request as parse_anthropic
from proxy.dialects.openai.request_parse import parse_request as parse_openai
from proxy.errors import InvalidRequest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "claude_code"
OWN_ID = "srvtoolu_ldp_abc_0"
HIT = {"type": "web_search_result", "url": "https://docs.aiohttp.org/changes",
       "title": "Changes", "encrypted_content": "3.12 notes", "page_age": None}


def anthropic_body(**fields: Any) -> dict[str, Any]:
    return {"model": "claude-x", "max_tokens": 100,
            "messages": [{"role": "user", "content": "hi"}], **fields}


def test_claude_code_web_search_request_keeps_its_server_tool() -> None:
    body = json.loads((FIXTURES / "web_search_request.json").read_text())
    request = parse_anthropic(body)
    assert request.server_tools == (
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 8},)
    assert request.tools == () and request.tool_choice == ToolChoice("auto")
    assert not any("web_search" in name for name in request.dropped)
    assert request.messages == (Message("user", (TextPart(
        "Perform a web search for the query: aiohttp 3.12 release notes"),)),)


def test_web_tools_are_kept_and_other_server_tools_dropped() -> None:
    search = {"type": "web_search_20260209", "name": "web_search", "allowed_domains": ["a.b"]}
    fetch = {"type": "web_fetch_20250910", "name": "web_fetch", "max_uses": 2}
    request = parse_anthropic(anthropic_body(tools=[
        search, {"type": "bash_20250124", "name": "bash"}, fetch,
        {"name": "get_weather", "input_schema": {"type": "object"}}]))
    assert request.server_tools == (search, fetch)
    assert [t.name for t in request.tools] == ["get_weather"]
    assert "tools.1:bash_20250124" in request.dropped


def history_body(assistant: list[dict[str, Any]]) -> dict[str, Any]:
    return anthropic_body(messages=[
        {"role": "user", "content": "What changed?"},
        {"role": "assistant", "content": assistant},
        {"role": "user", "content": "Thanks."}])


def test_an_answer_with_server_blocks_is_split_into_call_result_and_the_rest() -> None:
    request = parse_anthropic(history_body([
        {"type": "text", "text": "Looking. ", "citations": None},
        {"type": "server_tool_use", "id": OWN_ID, "name": "web_search",
         "input": {"query": "aiohttp changes"}, "caller": {"type": "direct"}},
        {"type": "web_search_tool_result", "tool_use_id": OWN_ID, "content": [HIT]},
        {"type": "text", "text": "It changed."}]))
    question, call, result, rest, thanks = request.messages
    assert question.role == "user" and thanks == Message("user", (TextPart("Thanks."),))
    assert call == Message("assistant", (TextPart("Looking. "), ToolUsePart(
        OWN_ID, "web_search", {"query": "aiohttp changes"})))
    assert result.role == "user"
    (part,) = result.parts
    assert isinstance(part, ToolResultPart) and part.tool_use_id == OWN_ID
    read = json.loads(part.content[0].text)  # type: ignore[union-attr]
    assert read["results"][0] == {"title": "Changes", "url": HIT["url"], "page_age": None,
                                  "content": "3.12 notes"}  # our own snippet: readable
    assert rest == Message("assistant", (TextPart("It changed."),))
    assert request.dropped == ()


def test_two_calls_in_a_row_and_an_error_result() -> None:
    other = "srvtoolu_ldp_abc_1"
    request = parse_anthropic(history_body([
        {"type": "server_tool_use", "id": OWN_ID, "name": "web_search", "input": {"query": "a"}},
        {"type": "web_search_tool_result", "tool_use_id": OWN_ID, "content": {
            "type": "web_search_tool_result_error", "error_code": "max_uses_exceeded"}},
        {"type": "server_tool_use", "id": other, "name": "web_fetch",
         "input": {"url": "https://docs.aiohttp.org/changes"}},
        {"type": "web_fetch_tool_result", "tool_use_id": other, "content": {
            "type": "web_fetch_result", "url": "https://docs.aiohttp.org/changes",
            "content": {"type": "document", "source": {
                "type": "text", "media_type": "text/plain", "data": "page text"}}}}]))
    roles = [m.role for m in request.messages]
    assert roles == ["user", "assistant", "user", "assistant", "user", "user"]
    error = request.messages[2].parts[0]
    assert isinstance(error, ToolResultPart) and error.is_error
    assert "max_uses_exceeded" in error.content[0].text  # type: ignore[union-attr]
    page = request.messages[4].parts[0]
    assert isinstance(page, ToolResultPart) and not page.is_error
    assert "page text" in page.content[0].text  # type: ignore[union-attr]


def test_anthropics_own_encrypted_snippets_are_not_passed_on() -> None:
    foreign = "srvtoolu_01AnthropicOwn"
    request = parse_anthropic(history_body([
        {"type": "server_tool_use", "id": foreign, "name": "web_search", "input": {"query": "a"}},
        {"type": "web_search_tool_result", "tool_use_id": foreign,
         "content": [{**HIT, "encrypted_content": "EqgfCioIARgBIiQ3YTAwMjY1Mi1mZjM5"}]}]))
    part = request.messages[2].parts[0]
    assert isinstance(part, ToolResultPart)
    assert "EqgfCioI" not in part.content[0].text  # type: ignore[union-attr]
    assert HIT["url"] in part.content[0].text  # type: ignore[union-attr]


def test_server_blocks_outside_an_assistant_turn_are_dropped() -> None:
    request = parse_anthropic(anthropic_body(messages=[{"role": "user", "content": [
        {"type": "text", "text": "hi"},
        {"type": "web_search_tool_result", "tool_use_id": OWN_ID, "content": [HIT]}]}]))
    assert request.messages == (Message("user", (TextPart("hi"),)),)
    assert request.dropped == ("messages.0.content.1:web_search_tool_result",)


def test_a_malformed_server_block_is_dropped_not_guessed() -> None:
    request = parse_anthropic(history_body([
        {"type": "text", "text": "x"},
        {"type": "server_tool_use", "id": OWN_ID, "name": "code_execution", "input": {}}]))
    assert request.messages[1] == Message("assistant", (TextPart("x"),))
    assert request.dropped == ("messages.1.content.1:server_tool_use",)


def test_openai_web_search_options_are_kept() -> None:
    options = {"search_context_size": "high", "user_location": {
        "type": "approximate", "approximate": {"country": "DE"}}}
    request = parse_openai({"model": "gpt-x", "messages": [{"role": "user", "content": "hi"}],
                            "web_search_options": options})
    assert request.web_search_options == options
    assert "web_search_options" not in request.dropped
    empty = parse_openai({"model": "gpt-x", "messages": [{"role": "user", "content": "hi"}],
                          "web_search_options": {}})
    assert empty.web_search_options == {}  # an empty object turns search on, as OpenAI's does
    plain = parse_openai({"model": "gpt-x", "messages": [{"role": "user", "content": "hi"}]})
    assert plain.web_search_options is None


def test_openai_web_search_options_must_be_an_object() -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_openai({"model": "gpt-x", "messages": [{"role": "user", "content": "hi"}],
                      "web_search_options": "high"})
    assert caught.value.param == "web_search_options"

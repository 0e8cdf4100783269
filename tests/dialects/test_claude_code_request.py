"""A replayed ~100 KB Claude Code main-loop request comes out as a clean OpenAI body."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from proxy.canonical import Request
from proxy.dialects.anthropic.request_parse import parse_request
from proxy.dialects.openai.request_render import Rendered, RenderOptions, render_request
from proxy.tokens import estimate_input_tokens

FIXTURE = Path(__file__).parent.parent / "fixtures" / "claude_code" / "main_loop_request.json"
LONG_MCP = "mcp__some_long_server_name__some_really_long_tool_name_for_testing_limits"
ANTHROPIC_ONLY_KEYS = {"cache_control", "defer_loading", "$schema", "context_management",
                       "safeguards", "thinking", "output_config", "metadata"}


@pytest.fixture(scope="module")
def raw() -> str:
    return FIXTURE.read_text()


@pytest.fixture(scope="module")
def request_(raw: str) -> Request:
    return parse_request(json.loads(raw))


@pytest.fixture(scope="module")
def rendered(request_: Request) -> Rendered:
    return render_request(request_, RenderOptions(model="gpt-test"))


def walk(node: Any, path: str = "") -> Iterator[tuple[str, Any, Any]]:
    """Every (path, key, value) in a JSON tree; list items have integer keys."""
    items = node.items() if isinstance(node, dict) else enumerate(node) \
        if isinstance(node, list) else ()
    for key, value in items:
        yield f"{path}.{key}", key, value
        yield from walk(value, f"{path}.{key}")


def test_fixture_is_claude_code_shaped(raw: str) -> None:
    body = json.loads(raw)
    assert 90_000 <= len(raw.encode()) <= 120_000
    assert list(body) == ["model", "messages", "system", "tools", "metadata", "max_tokens",
                          "thinking", "context_management", "output_config", "safeguards",
                          "stream"]
    assert body["system"][0]["text"].startswith("x-anthropic-billing-header:")
    assert isinstance(body["metadata"]["user_id"], str)
    assert len(body["tools"]) == 21


def test_no_anthropic_only_keys_anywhere(rendered: Rendered) -> None:
    leaks = [path for path, key, _ in walk(rendered.body) if key in ANTHROPIC_ONLY_KEYS]
    assert leaks == []


def test_no_billing_header_text(rendered: Rendered) -> None:
    texts = [v for _, _, v in walk(rendered.body) if isinstance(v, str)]
    assert not any("x-anthropic-billing-header" in t for t in texts)
    assert rendered.body["messages"][0]["content"].startswith("You are a Claude agent")


def test_tools_are_clean_functions(rendered: Rendered) -> None:
    tools = rendered.body["tools"]
    names = [t["function"]["name"] for t in tools]
    assert all(t["type"] == "function" for t in tools)
    assert all(len(n) <= 64 for n in names)
    assert not any("web_search" in n for n in names)
    assert "DeferredToolPlaceholder" not in names
    assert "WebFetch" in names  # a loaded deferred tool is an ordinary function
    assert len(names) == 19
    assert LONG_MCP not in names and LONG_MCP in rendered.tool_names.values()
    short = next(k for k, v in rendered.tool_names.items() if v == LONG_MCP)
    assert short in names


def test_tool_messages_follow_their_assistant_turn(rendered: Rendered) -> None:
    messages = rendered.body["messages"]
    seen_calls = 0
    for i, message in enumerate(messages):
        calls = message.get("tool_calls")
        if not calls:
            continue
        seen_calls += len(calls)
        following = messages[i + 1:i + 1 + len(calls)]
        assert [m["role"] for m in following] == ["tool"] * len(calls)
        assert [m["tool_call_id"] for m in following] == [c["id"] for c in calls]
        for call in calls:
            assert isinstance(json.loads(call["function"]["arguments"]), dict)
    assert seen_calls == 4
    tool_ids = [m["tool_call_id"] for m in messages if m["role"] == "tool"]
    assert len(tool_ids) == seen_calls


def test_conversation_shape(rendered: Rendered) -> None:
    roles = [m["role"] for m in rendered.body["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "tool", "assistant",
                     "tool", "assistant", "tool", "user"]
    system = rendered.body["messages"][0]["content"]
    assert "# Environment" in system  # Claude Code's env message, merged into the system
    first_user = rendered.body["messages"][1]["content"]
    assert [p["type"] for p in first_user] == ["text", "file", "text"]
    assert first_user[1]["file"]["file_data"].startswith("data:application/pdf;base64,")
    picture = rendered.body["messages"][-1]["content"][-1]
    assert picture["image_url"]["url"].startswith("data:image/png;base64,iVBOR")
    loaded = rendered.body["messages"][6]["content"]
    assert "WebFetch" in loaded and "Tool loaded." in loaded


def test_top_level_fields(rendered: Rendered, request_: Request) -> None:
    body = rendered.body
    assert body["model"] == "gpt-test"
    assert body["reasoning_effort"] == "medium"
    assert body["max_tokens"] == 128000
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert len(body["user"]) <= 64 and "{" not in body["user"]
    assert "tool_choice" not in body and "parallel_tool_calls" not in body
    assert {"context_management", "safeguards", "tools.16:DeferredToolPlaceholder"
            } <= set(request_.dropped)
    assert [t["type"] for t in request_.server_tools] == ["web_search_20250305"]


def test_rendered_body_is_json_and_smaller(raw: str, rendered: Rendered) -> None:
    out = json.dumps(rendered.body)
    assert json.loads(out) == rendered.body
    assert len(out) < len(raw) * 1.1


def test_token_estimate_is_plausible(raw: str, request_: Request) -> None:
    tokens = estimate_input_tokens(request_)
    assert len(raw) / 8 < tokens < len(raw) / 2
    assert estimate_input_tokens(parse_request(json.loads(raw), for_counting=True)) == tokens

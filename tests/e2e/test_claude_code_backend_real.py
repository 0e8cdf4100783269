"""The real Claude Code CLI (2.1.330, from npm) as the backend, offline: its pool's
children talk to the fake Anthropic API (ANTHROPIC_BASE_URL, ANTHROPIC_API_KEY in the
proxy's environment, which they inherit), driven by the official openai SDK. Streamed
text arrives in several deltas, a client tool round trip works through the prompt and the
sniffer, and two conversations do not see each other."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.fakes import anthropic_upstream as fake_anthropic
from tests.fakes.anthropic_upstream import FakeAnthropicUpstream
from tests.fakes.openai_upstream import Stream


@pytest.fixture
async def real(claude_bin: str, anthropic_upstream: FakeAnthropicUpstream,
               start_proxy: Any, tmp_path: Path,
               monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[openai.AsyncOpenAI]:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("ANTHROPIC_BASE_URL", anthropic_upstream.base_url)  # type: ignore[attr-defined]
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-key")
    monkeypatch.setenv("CLAUDE_CODE_MAX_RETRIES", "0")
    url = await start_proxy(upstream_dialect="claude-code", claude_cli=claude_bin, pool_size=1)
    client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="x", max_retries=0,
                                timeout=60)
    yield client
    await client.close()


def asked(upstream: FakeAnthropicUpstream) -> list[str]:
    """The text of every messages request the CLIs sent."""
    return [json.dumps(r["body"]) for r in upstream.requests if r["path"] == "/v1/messages"]


async def test_text_streams_in_several_deltas(real: openai.AsyncOpenAI,
                                              anthropic_upstream: FakeAnthropicUpstream) -> None:
    anthropic_upstream.scenario = Stream(fake_anthropic.text_stream(
        ["Hello ", "from ", "the ", "real ", "CLI."]), delay=0.03)
    stream = await real.chat.completions.create(
        model="sonnet", stream=True, messages=[{"role": "user", "content": "say hello"}])
    pieces = [c.choices[0].delta.content async for c in stream
              if c.choices and c.choices[0].delta.content]
    assert "".join(pieces) == "Hello from the real CLI." and len(pieces) > 1
    assert any("say hello" in body for body in asked(anthropic_upstream))


async def test_a_client_tool_round_trip(real: openai.AsyncOpenAI,
                                        anthropic_upstream: FakeAnthropicUpstream) -> None:
    call = '{"tool": "get_weather", "args": {"city": "Paris"}}'
    anthropic_upstream.scenario = [
        Stream(fake_anthropic.text_stream(["Let me check. ", call])),
        Stream(fake_anthropic.text_stream(["It is sunny in Paris."]))]
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
    first = await real.chat.completions.create(
        model="sonnet", tools=tools, messages=[{"role": "user", "content": "Weather?"}])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls", choice
    (tool_call,) = choice.message.tool_calls or []
    assert tool_call.function.name == "get_weather"
    assert json.loads(tool_call.function.arguments) == {"city": "Paris"}
    second = await real.chat.completions.create(model="sonnet", tools=tools, messages=[
        {"role": "user", "content": "Weather?"}, choice.message.model_dump(),
        {"role": "tool", "tool_call_id": tool_call.id, "content": "22 C, sunny"}])
    assert second.choices[0].message.content == "It is sunny in Paris."
    assert "22 C, sunny" in asked(anthropic_upstream)[-1]
    # The history's cache breakpoint reached the API; with the CLI's own, four at most.
    assert asked(anthropic_upstream)[-1].count('"cache_control"') <= 4
    assert "get_weather" in asked(anthropic_upstream)[0]  # the tools, told in the prompt


async def test_two_conversations_do_not_see_each_other(
        real: openai.AsyncOpenAI, anthropic_upstream: FakeAnthropicUpstream) -> None:
    anthropic_upstream.scenario = Stream(fake_anthropic.text_stream(["Noted."]))
    for secret in ("alpha-secret", "beta-secret"):
        await real.chat.completions.create(
            model="sonnet", messages=[{"role": "user", "content": f"remember {secret}"}])
    bodies = [b for b in asked(anthropic_upstream) if "-secret" in b]
    assert len(bodies) == 2
    assert "beta-secret" not in bodies[0] and "alpha-secret" not in bodies[1]

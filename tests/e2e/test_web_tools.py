"""Web search and fetch end to end: the real app on a real port, a fake OpenAI-compatible
model that calls the web functions, the fake Tavily server, and the official SDKs.

Claude Code's own WebSearch request (recorded from the CLI, tests/fixtures/claude_code/)
answered through the anthropic SDK's stream helper, which must accumulate the server tool
blocks; that answer sent back as the next turn's history; every web_fetch refusal of issue
12 item 3; the openai SDK with ``web_search_options`` reading ``url_citation``s; no key; and
the Tavily key in no log line.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import anthropic
import openai
import pytest
from anthropic.types import ServerToolUseBlock, TextBlock, WebSearchToolResultBlock

from tests.conftest import ProxyFactory
from tests.fakes.openai_upstream import FakeOpenAIUpstream, Stream, text_stream, tool_calls_stream
from tests.fakes.tavily import KEY, FakeTavily, fake_tavily

__all__ = ["fake_tavily"]  # the fixture, used by the tests below

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "claude_code"
PUBLIC = "https://93.184.215.14"  # a public address, so the DNS check needs no network
Started = Callable[..., Awaitable[str]]


@pytest.fixture
async def web_proxy(upstream: FakeOpenAIUpstream, start_proxy: ProxyFactory,
                    fake_tavily: FakeTavily) -> Started:
    """Starts the proxy in front of the fake model, with Tavily (the fake) set up."""
    async def start(**settings: Any) -> str:
        return await start_proxy(**{
            "upstream_url": upstream.base_url,  # type: ignore[attr-defined]
            "model": "upstream-model", "tavily_api_key": KEY,
            "tavily_base_url": fake_tavily.base_url, **settings})
    return start


def claude(url: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=url, api_key="sk-ant-client", max_retries=0)


def chatgpt(url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=url + "/v1", api_key="sk-client", max_retries=0)


def model_calls(name: str, arguments: str, call_id: str = "call_web1") -> Stream:
    """The fake model's round that calls one function (arguments in two pieces)."""
    return Stream(tool_calls_stream([(call_id, name, [arguments[:7], arguments[7:]])],
                                    text_before="Looking it up. "))


def claude_code_web_search() -> dict[str, Any]:
    body: dict[str, Any] = json.loads((FIXTURES / "web_search_request.json").read_text())
    return body


async def stream_claude_code_body(url: str, body: dict[str, Any]) -> tuple[Any, list[str]]:
    """Send a Claude Code body with the SDK's stream helper; the final message and the
    event types seen."""
    known = {k: body[k] for k in ("model", "messages", "system", "tools", "tool_choice",
                                  "metadata", "max_tokens", "output_config")}
    seen: list[str] = []
    async with claude(url) as client, client.messages.stream(
            **known, extra_query={"beta": "true"}) as stream:
        async for event in stream:
            seen.append(event.type)
        return await stream.get_final_message(), seen


# ---------------------------------------------------------------- Claude Code's WebSearch


async def test_claude_code_web_search_request_answered_with_server_blocks(
        upstream: FakeOpenAIUpstream, fake_tavily: FakeTavily, web_proxy: Started) -> None:
    url = await web_proxy()
    upstream.scenario = [model_calls("web_search", '{"query": "aiohttp 3.12 release notes"}'),
                         Stream(text_stream(["aiohttp 3.12 ", "added X."]))]
    message, seen = await stream_claude_code_body(url, claude_code_web_search())

    kinds = (TextBlock, ServerToolUseBlock, WebSearchToolResultBlock, TextBlock)
    assert len(message.content) == 4
    assert all(isinstance(b, kind) for b, kind in zip(message.content, kinds, strict=True))
    use, result = message.content[1], message.content[2]
    assert use.name == "web_search" and use.input == {"query": "aiohttp 3.12 release notes"}
    assert result.tool_use_id == use.id
    assert [hit.url for hit in result.content] == [
        f"https://site{n}.example.com/aiohttp-3.12-release-notes" for n in (1, 2, 3)]
    assert message.content[3].text == "aiohttp 3.12 added X."
    assert message.stop_reason == "end_turn"
    assert message.usage.server_tool_use is not None
    assert message.usage.server_tool_use.web_search_requests == 1
    assert seen.count("content_block_stop") == 4

    # Claude Code's max_uses (8) told to the model; the search asked of Tavily
    first, second = (r["body"] for r in upstream.requests)
    (function,) = [t["function"] for t in first["tools"]]
    assert function["name"] == "web_search" and "At most 8 searches" in function["description"]
    assert fake_tavily.calls[0].body["query"] == "aiohttp 3.12 release notes"
    # the second round: the model's own call and the results it reads
    call_turn, tool_turn = second["messages"][-2:]
    assert call_turn["tool_calls"][0]["id"] == "call_web1"
    assert tool_turn["role"] == "tool" and tool_turn["tool_call_id"] == "call_web1"
    assert "Snippet 1 about aiohttp 3.12 release notes." in tool_turn["content"]


async def test_claude_code_domain_lists_reach_tavily(
        upstream: FakeOpenAIUpstream, fake_tavily: FakeTavily, web_proxy: Started) -> None:
    url = await web_proxy()
    fake_tavily.results = [
        {"title": "Changes", "url": "https://docs.aiohttp.org/en/stable/changes.html",
         "content": "3.12", "score": 0.9, "raw_content": None},
        {"title": "Blog", "url": "https://blog.example.com/aiohttp", "content": "x",
         "score": 0.5, "raw_content": None}]
    upstream.scenario = [model_calls("web_search", '{"query": "aiohttp 3.12 release notes"}'),
                         Stream(text_stream(["Done."]))]
    body = json.loads((FIXTURES / "web_search_request_domains.json").read_text())
    message, _ = await stream_claude_code_body(url, body)
    assert fake_tavily.calls[0].body["include_domains"] == ["docs.aiohttp.org", "github.com"]
    # Tavily's answer outside the allowed domains is filtered out all the same
    assert [hit.url for hit in message.content[2].content] == [
        "https://docs.aiohttp.org/en/stable/changes.html"]


async def test_an_answer_with_server_blocks_sent_back_is_the_next_turns_history(
        upstream: FakeOpenAIUpstream, fake_tavily: FakeTavily, web_proxy: Started) -> None:
    url = await web_proxy(tavily_fetch_max_chars=1000)
    page = f"{PUBLIC}/aiohttp-changes"
    fake_tavily.results = [{"title": "Changes", "url": page, "content": "3.12 notes",
                            "score": 0.9, "raw_content": None}]
    fake_tavily.pages[page] = "# Changes\n" + "y" * 5000
    upstream.scenario = [model_calls("web_search", '{"query": "aiohttp changes"}'),
                         Stream(text_stream(["See the changes."])),
                         model_calls("web_fetch", json.dumps({"url": page}), "call_web2"),
                         Stream(text_stream(["Read it."]))]
    tools = [{"type": "web_search_20250305", "name": "web_search"},
             {"type": "web_fetch_20250910", "name": "web_fetch"}]
    turn = [{"role": "user", "content": "What changed in aiohttp?"}]
    async with claude(url) as client:
        async with client.messages.stream(model="claude-x", max_tokens=500, messages=turn,
                                          tools=tools) as stream:  # type: ignore[arg-type]
            first = await stream.get_final_message()
        # the SDK's accumulated content, sent back as it is, with a new question
        history = [*turn, {"role": "assistant", "content": first.content},
                   {"role": "user", "content": "Read that page."}]
        async with client.messages.stream(model="claude-x", max_tokens=500, messages=history,
                                          tools=tools) as stream:  # type: ignore[arg-type]
            second = await stream.get_final_message()

    sent = upstream.requests[2]["body"]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "assistant", "user"]
    srv_id = first.content[1].id
    assert sent[1]["tool_calls"][0]["id"] == srv_id
    assert json.loads(sent[1]["tool_calls"][0]["function"]["arguments"]) == {
        "query": "aiohttp changes"}
    assert sent[2]["tool_call_id"] == srv_id and page in sent[2]["content"]
    assert sent[1]["content"] == "Looking it up. " and sent[3]["content"] == "See the changes."
    # the page found by the first turn's search may be fetched in the second: cut to 1000
    fetched = second.content[2]
    assert fetched.type == "web_fetch_tool_result"
    assert fetched.content.url == page
    assert len(fetched.content.content.source.data) == 1000
    assert second.usage.server_tool_use.web_fetch_requests == 1
    assert [c.path for c in fake_tavily.calls] == ["/search", "/extract"]


# --------------------------------------------------------------------- fetch refusals


REFUSED = [
    ("https://not-in-the-conversation.example.org/?q=secret", "url_not_in_prior_context"),
    ("file:///etc/passwd", "url_not_allowed"),
    ("ftp://files.example.com/pub/", "url_not_allowed"),
    ("javascript:alert(1)", "url_not_allowed"),
    ("http://127.0.0.1:8080/admin", "url_not_allowed"),
    ("http://localhost/", "url_not_allowed"),
    ("http://[::1]/", "url_not_allowed"),
    ("http://2130706433/", "url_not_allowed"),  # 127.0.0.1 written as one number
    ("http://10.1.2.3/", "url_not_allowed"),
    ("http://192.168.0.1/router", "url_not_allowed"),
    ("http://172.16.5.4/", "url_not_allowed"),
    ("http://169.254.169.254/latest/meta-data/", "url_not_allowed"),  # link-local, metadata
    ("http://metadata.google.internal/computeMetadata/v1/", "url_not_allowed"),
    ("http://100.100.100.200/latest/meta-data/", "url_not_allowed"),  # shared space
    ("http://[fe80::1]/", "url_not_allowed"),
    ("http://[::ffff:10.0.0.1]/", "url_not_allowed"),
]


@pytest.mark.parametrize(("target", "code"), REFUSED, ids=[u for u, _ in REFUSED])
async def test_every_refused_fetch_is_an_error_block_and_nothing_is_fetched(
        upstream: FakeOpenAIUpstream, fake_tavily: FakeTavily, web_proxy: Started,
        target: str, code: str) -> None:
    url = await web_proxy()
    upstream.scenario = [model_calls("web_fetch", json.dumps({"url": target})),
                         Stream(text_stream(["I cannot read that."]))]
    # Every address but the first is in the user's message: given, and refused all the same.
    given = " ".join(u for u, _ in REFUSED[1:])
    async with claude(url) as client:
        message = await client.messages.create(
            model="claude-x", max_tokens=100,
            messages=[{"role": "user", "content": f"Read these: {given}"}],
            tools=[{"type": "web_fetch_20250910", "name": "web_fetch"}])  # type: ignore[list-item]
    result = message.content[2]
    assert result.type == "web_fetch_tool_result"
    assert result.content.type == "web_fetch_tool_result_error"
    assert result.content.error_code == code
    assert fake_tavily.calls == []
    told = upstream.requests[1]["body"]["messages"][-1]
    assert told["role"] == "tool" and code in told["content"]
    assert message.content[3].text == "I cannot read that."


# ------------------------------------------------------------------------ OpenAI clients


async def test_openai_web_search_options_streamed_with_citations(
        upstream: FakeOpenAIUpstream, fake_tavily: FakeTavily, web_proxy: Started) -> None:
    url = await web_proxy()
    upstream.scenario = [model_calls("web_search", '{"query": "aiohttp"}'),
                         Stream(text_stream(["Per https://site2.example.com/aiohttp it is ",
                                             "fast."]))]
    async with chatgpt(url) as client, client.chat.completions.stream(
            model="gpt-x", messages=[{"role": "user", "content": "Is aiohttp fast?"}],
            web_search_options={"search_context_size": "low"}) as stream:
        completion = await stream.get_final_completion()
    message = completion.choices[0].message
    assert message.content == ("Looking it up. Per https://site2.example.com/aiohttp it is "
                               "fast.")
    assert not message.tool_calls and completion.choices[0].finish_reason == "stop"
    cited = {a.url_citation.url for a in message.annotations or []}
    assert cited == {f"https://site{n}.example.com/aiohttp" for n in (1, 2, 3)}
    assert all(a.type == "url_citation" for a in message.annotations or [])
    assert fake_tavily.calls[0].body["max_results"] == 3  # "low"
    assert upstream.requests[0]["body"]["tools"][0]["function"]["name"] == "web_search"
    assert "web_search_options" not in upstream.requests[0]["body"]


async def test_openai_web_search_options_without_streaming(
        upstream: FakeOpenAIUpstream, web_proxy: Started) -> None:
    url = await web_proxy()
    upstream.scenario = [model_calls("web_search", '{"query": "aiohttp"}'),
                         Stream(text_stream(["It is fast."]))]
    async with chatgpt(url) as client:
        completion = await client.chat.completions.create(
            model="gpt-x", messages=[{"role": "user", "content": "Is aiohttp fast?"}],
            web_search_options={})
    message = completion.choices[0].message
    assert message.content == "Looking it up. It is fast."
    assert len(message.annotations or []) == 3
    assert completion.usage is not None and completion.usage.prompt_tokens == 22  # 11 + 11


# ------------------------------------------------------------------------- without a key


async def test_without_a_key_the_client_is_told_and_the_header_names_the_tools(
        upstream: FakeOpenAIUpstream, start_proxy: ProxyFactory) -> None:
    url = await start_proxy(upstream_url=upstream.base_url,  # type: ignore[attr-defined]
                            model="upstream-model")
    upstream.scenario = Stream(text_stream(["From memory."]))
    body = claude_code_web_search()
    async with aiohttp.ClientSession() as session, session.post(
            f"{url}/v1/messages?beta=true", json=body,
            headers={"x-api-key": "sk-ant-client"}) as response:
        assert response.status == 200
        dropped = response.headers["x-llm-proxy-dropped"].split(",")
        raw = await response.read()
    assert "web_search_20250305" in dropped
    assert b"no Tavily key is set" in raw and b"From memory." in raw
    sent = upstream.requests[0]["body"]
    assert "tools" not in sent  # nothing the model could call and nobody would run

    message, _ = await stream_claude_code_body(url, body)
    assert [b.type for b in message.content] == ["text", "text"]
    assert "web_search_20250305 was left out" in message.content[0].text


# ------------------------------------------------------------------------- the key's safety


async def test_the_tavily_key_reaches_no_log_line(
        upstream: FakeOpenAIUpstream, fake_tavily: FakeTavily, web_proxy: Started,
        caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    caplog.set_level(logging.DEBUG)
    url = await web_proxy(log_level="DEBUG", session_log_dir=str(tmp_path))
    fake_tavily.fail_next(401, json.dumps({"detail": {"error": f"Bad key {KEY}"}}).encode())
    upstream.scenario = [model_calls("web_search", '{"query": "a"}'),
                         model_calls("web_search", '{"query": "b"}', "call_web2"),
                         Stream(text_stream([f"The key is {KEY}."]))]
    async with claude(url) as client:
        message = await client.messages.create(
            model="claude-x", max_tokens=100, messages=[{"role": "user", "content": "search"}],
            tools=[{"type": "web_search_20250305", "name": "web_search"}])  # type: ignore[list-item]
    assert message.content[2].content.error_code == "unavailable"
    assert [c.headers["authorization"] for c in fake_tavily.calls] == [f"Bearer {KEY}"] * 2
    logged = caplog.text + "".join(p.read_text() for p in tmp_path.iterdir())
    assert "tavily /search failed: auth 401" in caplog.text
    assert "srvtoolu_" in logged  # the answer was logged, masked
    assert KEY not in logged


async def test_a_relay_to_anthropic_passes_the_server_tools_through(
        anthropic_upstream: Any, start_proxy: ProxyFactory, fake_tavily: FakeTavily) -> None:
    """Anthropic runs its own web search: nothing of ours runs, the definition goes as sent."""
    url = await start_proxy(upstream_url=anthropic_upstream.base_url,
                            upstream_dialect="anthropic", upstream_api_key="sk-ant-upstream",
                            tavily_api_key=KEY, tavily_base_url=fake_tavily.base_url)
    body = claude_code_web_search()
    async with aiohttp.ClientSession() as session, session.post(
            f"{url}/v1/messages?beta=true", json=body,
            headers={"x-api-key": "sk-ant-client"}) as response:
        assert response.status == 200
        await response.read()
    assert anthropic_upstream.requests[0]["body"]["tools"] == body["tools"]
    assert fake_tavily.calls == []

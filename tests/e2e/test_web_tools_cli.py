"""The real Claude Code CLI running a web search through the proxy, offline: a fake
OpenAI-compatible model, the fake Tavily server.

The CLI's WebSearch tool sends a request of its own, with Anthropic's ``web_search`` server
tool (the shape in tests/fixtures/claude_code/web_search_request.json); the proxy runs the
search and answers with server tool blocks, which the CLI turns into the tool result its
main loop reads. Four model calls in all: the main loop calls WebSearch; the WebSearch
request's first round calls web_search, its second writes the summary; the main loop
answers. How the CLI is found and run: tests/e2e/test_claude_code_cli.py.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from proxy.app import create_app, server_options
from proxy.config import Settings
from tests.e2e.test_claude_code_cli import _explain, run_claude
from tests.fakes.openai_upstream import (
    FakeOpenAIUpstream,
    Scenario,
    Stream,
    text_stream,
    tool_calls_stream,
)
from tests.fakes.tavily import KEY, FakeTavily


@contextlib.asynccontextmanager
async def serve(scenario: list[Scenario]) -> AsyncIterator[
        tuple[FakeOpenAIUpstream, FakeTavily, str]]:
    upstream, tavily = FakeOpenAIUpstream(scenario), FakeTavily()
    base = await upstream.start()
    await tavily.start()
    settings = Settings(upstream_url=base, model="gpt-4o-mini", port=0, tavily_api_key=KEY,
                        tavily_base_url=tavily.base_url)
    runner = web.AppRunner(create_app(settings), shutdown_timeout=1.0, **server_options())
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        host, port = runner.addresses[0][:2]
        yield upstream, tavily, f"http://{host}:{port}"
    finally:
        await runner.cleanup()
        await tavily.stop()
        await upstream.stop()


async def test_claude_code_web_search_through_the_proxy(claude_bin: str, tmp_path: Path) -> None:
    scenario: list[Scenario] = [
        Stream(tool_calls_stream([("call_cc_ws", "WebSearch",
                                   ['{"query": "aiohttp ', 'release notes"}'])])),
        Stream(tool_calls_stream([("call_proxy_ws", "web_search",
                                   ['{"query": "aiohttp release notes"}'])])),
        Stream(text_stream(["aiohttp 3.12 ", "is out."])),
        Stream(text_stream(["Found it."])),
    ]
    async with serve(scenario) as (upstream, tavily, origin):
        run = await run_claude(claude_bin, origin, tmp_path,
                               "Search the web for the aiohttp release notes",
                               "--allowedTools", "WebSearch")
        why = _explain(run, upstream, tmp_path)
        assert run.returncode == 0, why
        assert run.result["is_error"] is False, why
        assert run.result["result"] == "Found it.", why
        assert len(upstream.requests) == 4, why
    assert [c.body["query"] for c in tavily.calls] == ["aiohttp release notes"]

    # The WebSearch request: Claude Code's prompt, the web_search function offered
    search_request = upstream.requests[1]["body"]
    assert "Perform a web search for the query: aiohttp release notes" in json.dumps(
        search_request["messages"])
    (function,) = [t["function"] for t in search_request["tools"]]
    assert function["name"] == "web_search"
    # The CLI read our server tool blocks: the main loop's tool result holds the links
    main_loop = upstream.requests[3]["body"]["messages"]
    (result,) = [m for m in main_loop if m["role"] == "tool"]
    assert result["tool_call_id"] == "call_cc_ws"
    for n in (1, 2, 3):
        assert f"https://site{n}.example.com/aiohttp-release-notes" in result["content"], why
    assert "aiohttp 3.12 is out." in result["content"], why
    # ... and counted the search
    (searched,) = [line["tool_use_result"] for line in run.of_type("user")
                   if isinstance(line.get("tool_use_result"), dict)]
    assert searched["query"] == "aiohttp release notes", why
    assert searched["searchCount"] == 1, searched

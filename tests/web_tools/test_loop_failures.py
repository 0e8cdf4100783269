"""The web tool loop, continued: fetches and their refusals (the DNS check included),
Tavily failures, the first and second rounds failing before and after their first bytes,
and requests without a Tavily key."""

from __future__ import annotations

from dataclasses import replace

import pytest

from proxy.backends.base import Batches
from proxy.canonical import (
    Request,
    ServerToolError,
    ServerToolUse,
    Tool,
    ToolChoice,
    ToolResultPart,
    WebFetchPage,
)
from proxy.errors import InvalidRequest, UpstreamStatusError, UpstreamStreamError
from proxy.web_tools.loop import web_tool_stream
from proxy.web_tools.settings import TavilySettings
from proxy.web_tools.tavily import TavilyClient
from tests.fakes.backend import Fail
from tests.fakes.tavily import KEY, FakeTavily
from tests.support import check_anthropic_stream
from tests.web_tools.rig import (
    CALL,
    FETCH_TOOL,
    SEARCH_TOOL,
    WEATHER,
    Rig,
    answer,
    ask,
    calls_round,
    collected,
)

# ------------------------------------------------------------------------------ fetch


async def test_fetch_of_a_url_from_the_search_with_the_dns_check(
        fake_tavily: FakeTavily) -> None:
    page = "https://site1.example.com/aiohttp"
    fake_tavily.pages[page] = "# aiohttp\n" + "x" * 3000
    resolved: list[str] = []

    async def resolver(host: str) -> list[str]:
        resolved.append(host)
        return ["93.184.215.14"]

    settings = TavilySettings(api_key=KEY, base_url=fake_tavily.base_url, fetch_max_chars=1000)
    async with TavilyClient(settings) as client:
        rig = Rig(client, calls_round(("call_1", "web_search", {"query": "aiohttp"})),
                  calls_round(("call_2", "web_fetch", {"url": page})), answer())
        async with rig.upstreams.opened(rig.providers):
            batches = web_tool_stream(
                lambda request: rig.upstreams.stream(request, CALL, rig.plan, rig.trace),
                ask(tools=(SEARCH_TOOL, FETCH_TOOL)), CALL, client, resolver=resolver)
            message = collected([batch async for batch in batches])
    fetched = message.blocks[5]
    assert fetched.kind == "web_fetch_tool_result" and isinstance(fetched.result, WebFetchPage)
    assert fetched.result.url == page and len(fetched.result.text) == 1000
    assert resolved == ["site1.example.com"]
    assert message.usage.server_tool_use == ServerToolUse(1, 1)


@pytest.mark.parametrize(("url", "code", "addresses"), [
    ("https://elsewhere.example.net/?q=secret", "url_not_in_prior_context", ["93.184.215.14"]),
    ("https://intranet.example.com/", "url_not_allowed", ["10.0.0.5"]),  # by its DNS answer
    ("http://169.254.169.254/latest/meta-data/", "url_not_allowed", []),
    ("file:///etc/passwd", "url_not_allowed", []),
])
async def test_fetch_refusals_are_error_blocks_and_tavily_is_not_asked(
        fake_tavily: FakeTavily, url: str, code: str, addresses: list[str]) -> None:
    async def resolver(host: str) -> list[str]:
        return addresses

    settings = TavilySettings(api_key=KEY, base_url=fake_tavily.base_url)
    question = "Read https://intranet.example.com/ and http://169.254.169.254/latest/meta-data/"
    async with TavilyClient(settings) as client:
        rig = Rig(client, calls_round(("call_1", "web_fetch", {"url": url})), answer())
        async with rig.upstreams.opened(rig.providers):
            batches = web_tool_stream(
                lambda request: rig.upstreams.stream(request, CALL, rig.plan, rig.trace),
                ask(question, tools=(FETCH_TOOL,)), CALL, client, resolver=resolver)
            message = collected([batch async for batch in batches])
    assert message.blocks[2].result == ServerToolError(code)
    assert fake_tavily.calls == []
    assert message.usage.server_tool_use == ServerToolUse(0, 0)


# --------------------------------------------------------------------------- failures


@pytest.mark.parametrize(("status", "code"), [(401, "unavailable"), (429, "too_many_requests"),
                                              (500, "unavailable"), (503, "unavailable")])
async def test_a_tavily_failure_is_a_result_the_model_reads(
        tavily: TavilyClient, fake_tavily: FakeTavily, status: int, code: str) -> None:
    fake_tavily.fail_next(status)
    rig = Rig(tavily, calls_round(("call_1", "web_search", {"query": "q"})), answer())
    message = collected(await rig.stream(ask()))
    assert message.blocks[2].result == ServerToolError(code)
    assert message.stop_reason == "end_turn" and message.blocks[3].text == "aiohttp 3.12 is out."
    told = rig.one.calls[1].request.messages[-1].parts[0]
    assert isinstance(told, ToolResultPart) and told.is_error
    assert message.usage.server_tool_use == ServerToolUse(0, 0)


async def test_a_tavily_timeout_is_a_result_the_model_reads(fake_tavily: FakeTavily) -> None:
    fake_tavily.delay = 5.0
    settings = TavilySettings(api_key=KEY, base_url=fake_tavily.base_url, timeout=0.2)
    async with TavilyClient(settings) as client:
        rig = Rig(client, calls_round(("call_1", "web_search", {"query": "q"})), answer())
        message = collected(await rig.stream(ask()))
    assert message.blocks[2].result == ServerToolError("unavailable")
    assert message.stop_reason == "end_turn"


async def test_a_failing_first_round_is_still_an_http_error(tavily: TavilyClient) -> None:
    rig = Rig(tavily, [Fail(UpstreamStatusError("bad field", status=400))])
    async with rig.upstreams.opened(rig.providers):
        batches = rig.upstreams.stream(ask(), CALL, rig.plan, rig.trace)
        with pytest.raises(UpstreamStatusError) as caught:
            await anext(batches)
    assert caught.value.status == 400


async def test_a_second_round_failing_before_its_bytes_fails_over(tavily: TavilyClient) -> None:
    rig = Rig(tavily, calls_round(("call_1", "web_search", {"query": "q"})),
              [Fail(UpstreamStatusError("overloaded", status=503))],
              fallback=[answer("From the fallback.")])
    sse = await rig.sse(ask())
    check_anthropic_stream(sse)
    texts = "".join(d["delta"]["text"] for n, d in sse if n == "content_block_delta"
                    and d["delta"]["type"] == "text_delta")
    assert texts == "Let me look. From the fallback."
    assert len(rig.one.calls) == 2 and len(rig.two.calls) == 1
    assert rig.two.calls[0].request.messages[-1].parts[0].tool_use_id == "call_1"  # type: ignore[union-attr]


async def test_a_second_round_failing_with_nothing_left_is_an_in_stream_error(
        tavily: TavilyClient) -> None:
    rig = Rig(tavily, calls_round(("call_1", "web_search", {"query": "q"})),
              [Fail(UpstreamStatusError("overloaded", status=503))])
    sse = await rig.sse(ask())
    check_anthropic_stream(sse, complete=False)
    names = [n for n, _ in sse]
    assert "message_delta" not in names  # round 1's end was held back, as it was not the last
    assert [d["content_block"]["type"] for n, d in sse if n == "content_block_start"] == [
        "text", "server_tool_use", "web_search_tool_result"]
    assert sse[-1][1]["error"]["message"] == "overloaded"


async def test_a_second_round_failing_after_its_bytes_is_an_in_stream_error(
        tavily: TavilyClient) -> None:
    broken = answer()[:2] + [Fail(UpstreamStreamError("the upstream broke off"))]
    rig = Rig(tavily, calls_round(("call_1", "web_search", {"query": "q"})), broken)
    sse = await rig.sse(ask())
    check_anthropic_stream(sse, complete=False)
    texts = [d["delta"]["text"] for n, d in sse if n == "content_block_delta"
             and d["delta"]["type"] == "text_delta"]
    assert texts == ["Let me look. ", "aiohttp 3.12 is out."]


# ----------------------------------------------------------------------- without a key


async def test_without_a_key_the_tools_are_left_out_and_the_answer_says_so() -> None:
    rig = Rig(None, answer("From memory."))
    batches = await rig.stream(ask(tools=(SEARCH_TOOL, FETCH_TOOL), client_tools=(WEATHER,)))
    message = collected(batches)
    assert [b.kind for b in message.blocks] == ["text", "text"]
    assert "no Tavily key is set" in message.blocks[0].text
    assert "web_search_20250305 and web_fetch_20250910 were left out" in message.blocks[0].text
    assert message.blocks[1].text == "From memory."
    sent = rig.one.calls[0].request
    assert [t.name for t in sent.tools] == ["get_weather"] and sent.server_tools == ()
    assert rig.upstreams.unserved(ask()) == ("web_search_20250305",)


async def test_web_search_options_without_a_key_are_named_too() -> None:
    rig = Rig(None, answer())
    request = Request(model="m", messages=ask().messages, web_search_options={})
    assert rig.upstreams.unserved(request) == ("web_search_options",)
    message = collected(await rig.stream(request))
    assert "web_search_options was left out" in message.blocks[0].text


async def test_a_client_tool_named_like_an_offered_one_is_refused(tavily: TavilyClient) -> None:
    rig = Rig(tavily, answer())
    clash = Request(model="m", messages=ask().messages, web_search_options={},
                    tools=(Tool("web_search", None, {"type": "object"}),))
    async with rig.upstreams.opened(rig.providers):
        with pytest.raises(InvalidRequest):
            rig.upstreams.stream(clash, CALL, rig.plan, rig.trace)
    assert rig.one.calls == []


async def test_requests_without_web_tools_take_the_plain_path(tavily: TavilyClient) -> None:
    rig = Rig(tavily, answer())
    plain = Request(model="m", messages=ask().messages)
    batches: Batches
    async with rig.upstreams.opened(rig.providers):
        batches = rig.upstreams.stream(plain, CALL, rig.plan, rig.trace)
        got = [batch async for batch in batches]
    assert rig.one.calls[0].request is plain
    assert collected(got).usage.server_tool_use is None


async def test_without_a_key_a_choice_of_a_web_tool_goes_too() -> None:
    rig = Rig(None, answer())
    await rig.stream(replace(ask(client_tools=(WEATHER,)),
                             tool_choice=ToolChoice("tool", "web_search")))
    await rig.stream(replace(ask(), tool_choice=ToolChoice("any")))
    kept_tools, no_tools = (played.request for played in rig.one.calls)
    assert kept_tools.tool_choice is None and [t.name for t in kept_tools.tools] == [
        "get_weather"]
    assert no_tools.tool_choice is None and no_tools.tools == ()

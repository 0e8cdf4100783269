"""The Tavily client against the fake Tavily server: the requests it sends, the answers it
reads, every failure as a value, the outbound proxy, and the key kept out of the logs."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import replace

import aiohttp
import pytest
from aiohttp import web

from proxy.canonical import ServerToolError, ServerToolUse, WebFetchPage
from proxy.web_tools.results import TavilyFailure
from proxy.web_tools.session import FetchCall, SearchCall, WebToolSession
from proxy.web_tools.settings import TavilySettings
from proxy.web_tools.spec import FetchSpec, SearchSpec, UserLocation, WebToolsSpec
from proxy.web_tools.tavily import TavilyClient
from tests.fakes.tavily import KEY, FakeTavily

SEARCH = SearchCall("aiohttp sse", max_results=2, search_depth="advanced", topic="general",
                    include_domains=("python.org",), country="germany")
FETCH = FetchCall("https://docs.example.com/page", "docs.example.com", 1000)


def settings_for(fake: FakeTavily, **changes: object) -> TavilySettings:
    return replace(TavilySettings(api_key=KEY, base_url=fake.base_url), **changes)  # type: ignore[arg-type]


@pytest.fixture
async def tavily(fake_tavily: FakeTavily) -> AsyncIterator[TavilyClient]:
    async with TavilyClient(settings_for(fake_tavily)) as client:
        yield client


async def test_search_sends_the_key_as_a_bearer_and_the_call_as_json(
        fake_tavily: FakeTavily, tavily: TavilyClient) -> None:
    answer = await tavily.search(SEARCH)
    assert isinstance(answer, dict) and len(answer["results"]) == 2
    (call,) = fake_tavily.calls
    assert call.path == "/search"
    assert call.headers["authorization"] == f"Bearer {KEY}"
    assert call.headers["content-type"] == "application/json"
    assert call.body == {"query": "aiohttp sse", "search_depth": "advanced", "topic": "general",
                         "max_results": 2, "include_answer": False,
                         "include_raw_content": False, "include_images": False,
                         "include_domains": ["python.org"], "country": "germany"}


async def test_extract_asks_for_one_page_as_markdown(fake_tavily: FakeTavily,
                                                     tavily: TavilyClient) -> None:
    fake_tavily.pages[FETCH.url] = "# Title\ntext"
    answer = await tavily.extract(FETCH)
    assert isinstance(answer, dict)
    assert answer["results"] == [{"url": FETCH.url, "raw_content": "# Title\ntext", "images": []}]
    assert fake_tavily.calls[0].body == {"urls": [FETCH.url], "format": "markdown",
                                         "extract_depth": "basic"}
    assert fake_tavily.calls[0].headers["authorization"] == f"Bearer {KEY}"


async def test_a_session_round_trip_through_the_fake(fake_tavily: FakeTavily,
                                                    tavily: TavilyClient) -> None:
    spec = WebToolsSpec(SearchSpec(user_location=UserLocation(country="US")), FetchSpec())
    session = WebToolSession(spec, tavily.settings)
    planned = session.plan("web_search", {"query": "python news"})
    assert isinstance(planned.call, SearchCall)
    found = session.finish(planned, await tavily.search(planned.call))
    assert isinstance(found.result, tuple) and len(found.result) == 3
    assert fake_tavily.calls[0].body["country"] == "united states"
    url = found.result[0].url
    fake_tavily.pages[url] = "the page"
    fetch = session.plan("web_fetch", {"url": url})
    assert isinstance(fetch.call, FetchCall)
    page = session.finish(fetch, await tavily.extract(fetch.call), retrieved_at="now")
    assert page.result == WebFetchPage(url, "the page", None, "now")
    assert session.usage == ServerToolUse(1, 1)


@pytest.mark.parametrize(("status", "kind"), [
    (400, "bad_request"), (401, "auth"), (403, "auth"), (429, "rate_limit"), (432, "quota"),
    (433, "quota"), (404, "unavailable"), (500, "unavailable"), (502, "unavailable"),
    (503, "unavailable"),
])
async def test_error_statuses_are_typed_failures(fake_tavily: FakeTavily, tavily: TavilyClient,
                                                 status: int, kind: str) -> None:
    fake_tavily.fail_next(status)
    failure = await tavily.search(SEARCH)
    assert isinstance(failure, TavilyFailure)
    assert (failure.kind, failure.status) == (kind, status)
    if status in (401, 429):
        assert failure.detail and failure.detail in ("Unauthorized: missing or invalid API key.",
                                                     "Your request has been blocked due to "
                                                     "excessive requests.")


async def test_a_wrong_key_is_refused_by_the_fake_and_reported(fake_tavily: FakeTavily) -> None:
    async with TavilyClient(settings_for(fake_tavily, api_key="tvly-wrong")) as client:
        failure = await client.extract(FETCH)
    assert isinstance(failure, TavilyFailure) and failure.kind == "auth"
    session = WebToolSession(WebToolsSpec(fetch=FetchSpec()), settings_for(fake_tavily),
                             known_urls=[FETCH.url])
    outcome = session.finish(session.plan("web_fetch", {"url": FETCH.url}), failure)
    assert outcome.result == ServerToolError("unavailable")


async def test_a_slow_tavily_times_out(fake_tavily: FakeTavily) -> None:
    fake_tavily.delay = 30.0  # the handler is cancelled when the client gives up
    async with TavilyClient(settings_for(fake_tavily, timeout=0.2)) as client:
        failure = await client.search(SEARCH)
    assert isinstance(failure, TavilyFailure) and failure.kind == "timeout"
    assert failure.status is None


@pytest.mark.parametrize("body", [b"<html>oops</html>", b"[1, 2]"])
async def test_a_malformed_answer_is_a_bad_answer(fake_tavily: FakeTavily, tavily: TavilyClient,
                                                  body: bytes) -> None:
    fake_tavily.raw_next(body)
    failure = await tavily.search(SEARCH)
    assert isinstance(failure, TavilyFailure) and failure.kind == "bad_answer"


async def test_nobody_listening_is_unavailable(unused_tcp_port: int) -> None:
    settings = TavilySettings(api_key=KEY, base_url=f"http://127.0.0.1:{unused_tcp_port}")
    async with TavilyClient(settings) as client:
        failure = await client.search(SEARCH)
    assert isinstance(failure, TavilyFailure) and failure.kind == "unavailable"


async def test_the_key_never_reaches_a_log_or_a_failure(fake_tavily: FakeTavily,
                                                        tavily: TavilyClient,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    echo = b'{"detail": {"error": "bad key ' + KEY.encode() + b'"}}'  # a server that echoes it
    fake_tavily.fail_next(401, echo)
    fake_tavily.fail_next(500, b"Internal error for Bearer " + KEY.encode())
    failures = [await tavily.search(SEARCH), await tavily.extract(FETCH)]
    assert all(isinstance(f, TavilyFailure) for f in failures)
    assert all(KEY not in f.detail for f in failures if isinstance(f, TavilyFailure))
    assert "[tavily key]" in failures[0].detail  # type: ignore[union-attr]
    ours = [r for r in caplog.records if r.name == "proxy.web_tools"]
    assert [r.levelno for r in ours] == [logging.WARNING] * 2  # each failure is logged, once
    assert all(KEY not in record.getMessage() for record in caplog.records)
    assert KEY not in repr(tavily.settings)


async def test_a_session_handed_in_is_used_and_left_open(fake_tavily: FakeTavily) -> None:
    async with aiohttp.ClientSession() as session:
        client = TavilyClient(settings_for(fake_tavily), session)
        assert isinstance(await client.search(SEARCH), dict)
        await client.close()
        assert not session.closed


# --- the outbound proxy --------------------------------------------------------------------


class ForwardProxy:
    """An HTTP forward proxy on 127.0.0.1 that sends every request on to ``target``,
    whatever host the client named, and records the absolute URLs it was asked for."""

    def __init__(self, target: str) -> None:
        self.target, self.seen = target, []  # type: ignore[var-annotated]
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self.runner = web.AppRunner(app)

    async def start(self) -> str:
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        return f"http://proxyuser:proxypass@127.0.0.1:{self.runner.addresses[0][1]}"

    async def _forward(self, request: web.Request) -> web.Response:
        self.seen.append((str(request.url), request.headers.get("Proxy-Authorization")))
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() not in ("host", "proxy-authorization", "content-length")}
        async with aiohttp.ClientSession() as session, session.post(
                self.target + request.path, data=await request.read(),
                headers=headers) as response:
            return web.Response(status=response.status, body=await response.read(),
                                content_type="application/json")


async def test_calls_go_through_the_tavily_proxy(fake_tavily: FakeTavily) -> None:
    proxy = ForwardProxy(fake_tavily.base_url)
    address = await proxy.start()
    try:
        # A host that resolves nowhere: only the proxy can reach "Tavily".
        settings = TavilySettings(api_key=KEY, base_url="http://tavily.invalid", proxy=address)
        async with TavilyClient(settings) as client:
            answer = await client.search(SEARCH)
        assert isinstance(answer, dict) and answer["results"]
        assert proxy.seen == [("http://tavily.invalid/search", "Basic cHJveHl1c2VyOnByb3h5cGFzcw==")]
        assert fake_tavily.calls[0].headers["authorization"] == f"Bearer {KEY}"
    finally:
        await proxy.runner.cleanup()

"""Errors in both regimes, through the anthropic SDK: before the stream (an honest HTTP
status in Anthropic's shape) and after it started (an ``error`` event, no message_stop)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anthropic
import pytest

from tests.fakes.openai_upstream import (
    ErrorResponse,
    FakeOpenAIUpstream,
    Stream,
    error_body,
    error_chunk,
    text_stream,
)
from tests.support import check_anthropic_stream, parse_anthropic_sse

HELLO = [{"role": "user", "content": "hi"}]
BODY = {"model": "m", "max_tokens": 5, "messages": HELLO}


@contextlib.asynccontextmanager
async def client(url: str, key: str = "sk-client") -> AsyncIterator[anthropic.AsyncAnthropic]:
    """An SDK client closed on this test's loop: one left to the garbage collector closes
    itself on whichever loop runs then, and logs an error into a later test."""
    async with anthropic.AsyncAnthropic(base_url=url, api_key=key, max_retries=0) as sdk:
        yield sdk


async def post(url: str, body: Any, path: str = "/v1/messages",
               headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any], Any]:
    data = body if isinstance(body, bytes) else None
    async with aiohttp.ClientSession() as session, session.post(
            url + path, data=data, json=None if data is not None else body,
            headers=headers) as response:
        return response.status, dict(response.headers), await response.json()


@pytest.mark.parametrize(("upstream_status", "status", "kind", "sdk_error"), [
    (429, 429, "rate_limit_error", anthropic.RateLimitError),
    (503, 529, "overloaded_error", anthropic.InternalServerError),
    (500, 500, "api_error", anthropic.InternalServerError),
    (502, 502, "api_error", anthropic.InternalServerError),
    (400, 400, "invalid_request_error", anthropic.BadRequestError),
    (401, 401, "authentication_error", anthropic.AuthenticationError),
])
async def test_upstream_errors_before_the_stream(
        upstream: FakeOpenAIUpstream, proxy_url: str, upstream_status: int, status: int,
        kind: str, sdk_error: type[Exception]) -> None:
    upstream.scenario = ErrorResponse(upstream_status, error_body("upstream says no"),
                                      headers={"retry-after": "7"})
    with pytest.raises(sdk_error) as caught:
        async with client(proxy_url) as sdk, sdk.messages.stream(
                model="m", max_tokens=5, messages=HELLO) as s:  # type: ignore[arg-type]
            await s.get_final_message()
    error: Any = caught.value
    assert error.status_code == status
    assert error.body["error"] == {"type": kind, "message": "upstream says no"}
    if upstream_status == 429:
        assert error.response.headers["retry-after"] == "7"


async def test_error_inside_the_stream(upstream: FakeOpenAIUpstream, proxy_url: str) -> None:
    upstream.scenario = Stream(text_stream(["Partial"], with_done=False)[:2]
                               + [error_chunk("model crashed", "server_error")])
    status, _, _ = 0, None, None
    async with aiohttp.ClientSession() as session, session.post(
            proxy_url + "/v1/messages", json={**BODY, "stream": True}) as response:
        status, raw = response.status, await response.read()
    assert status == 200
    frames = parse_anthropic_sse(raw)
    check_anthropic_stream(frames, complete=False)
    assert frames[-1][1]["error"]["message"] == "model crashed"
    with pytest.raises(anthropic.APIStatusError, match="model crashed"):
        async with client(proxy_url) as sdk, sdk.messages.stream(
                model="m", max_tokens=5, messages=HELLO) as s:  # type: ignore[arg-type]
            await s.get_final_message()


async def test_a_cut_upstream_connection(upstream: FakeOpenAIUpstream, proxy_url: str) -> None:
    upstream.scenario = Stream(text_stream(["a", "b", "c", "d"]), cut_after=3)
    async with aiohttp.ClientSession() as session, session.post(
            proxy_url + "/v1/messages", json={**BODY, "stream": True}) as response:
        raw = await response.read()
    check_anthropic_stream(parse_anthropic_sse(raw), complete=False)
    with pytest.raises(anthropic.APIError):
        async with client(proxy_url) as sdk:
            await sdk.messages.create(model="m", max_tokens=5, messages=HELLO)  # type: ignore[arg-type]


async def test_a_cut_before_the_first_byte_is_an_http_error(
        upstream: FakeOpenAIUpstream, proxy_url: str) -> None:
    upstream.scenario = Stream([b": nothing yet\n\n"], cut_after=1)
    status, _, body = await post(proxy_url, {**BODY, "stream": True})
    assert status == 502 and body["type"] == "error"


async def test_unreachable_upstream_is_502(start_proxy: Any) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connection refused
        url = await start_proxy(upstream_url=f"http://127.0.0.1:{port}/v1")
        status, _, body = await post(url, BODY)
    assert status == 502 and body["error"]["type"] == "api_error"


async def test_a_silent_upstream_is_504(upstream: FakeOpenAIUpstream, start_proxy: Any) -> None:
    url = await start_proxy(upstream_url=upstream.base_url, read_timeout=0.3)  # type: ignore[attr-defined]
    upstream.scenario = Stream([b": hello\n\n"], hang_after=True)
    status, _, body = await post(url, BODY)
    assert status == 504 and body["error"]["type"] == "timeout_error"


async def test_client_disconnect_closes_the_upstream_request(
        upstream: FakeOpenAIUpstream, proxy_url: str) -> None:
    upstream.scenario = Stream(text_stream(["first"], with_done=False)[:2], hang_after=True)
    async with aiohttp.ClientSession() as session:
        response = await session.post(proxy_url + "/v1/messages", json={**BODY, "stream": True})
        await response.content.readuntil(b"message_start")
        response.close()  # the client goes away mid-stream
    await asyncio.wait_for(upstream.client_gone.wait(), timeout=1.0)
    assert upstream.disconnects == 1


@pytest.mark.parametrize(("body", "param"), [
    (b"{not json", None),
    (b"[1, 2]", None),
    ({"max_tokens": 5, "messages": HELLO}, "model"),
    ({"model": "m", "messages": HELLO}, "max_tokens"),
    ({"model": "m", "max_tokens": "5", "messages": HELLO}, "max_tokens"),
    ({"model": "m", "max_tokens": 5, "messages": [{"role": "bot", "content": "x"}]},
     "messages.0.role"),
])
async def test_bad_requests_are_400_naming_the_field(proxy_url: str, body: Any,
                                                     param: str | None) -> None:
    status, headers, answer = await post(proxy_url, body)
    assert status == 400
    assert answer["type"] == "error" and answer["error"]["type"] == "invalid_request_error"
    if param:
        assert answer["error"]["message"].startswith(param)
    assert headers["x-should-retry"] == "false"


async def test_too_large_is_413(upstream: FakeOpenAIUpstream, start_proxy: Any) -> None:
    url = await start_proxy(upstream_url=upstream.base_url, max_body_bytes=1000)  # type: ignore[attr-defined]
    big = {**BODY, "messages": [{"role": "user", "content": "x" * 5000}]}
    status, _, answer = await post(url, big)
    assert status == 413 and answer["error"]["type"] == "request_too_large"
    with pytest.raises(anthropic.APIStatusError) as caught:
        async with client(url) as sdk:
            await sdk.messages.create(model="m", max_tokens=5, messages=big["messages"])  # type: ignore[arg-type]
    assert caught.value.status_code == 413


async def test_no_upstream_configured(start_proxy: Any) -> None:
    url = await start_proxy()
    status, _, answer = await post(url, BODY)
    assert status == 503 and "--upstream" in answer["error"]["message"]


async def test_unknown_paths_answer_at_once(proxy_url: str) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.head(proxy_url + "/") as response:
            assert response.status == 200
        async with session.head(proxy_url + "/api/hello") as response:
            assert response.status == 404
        async with session.get(proxy_url + "/v1/nope",
                               headers={"anthropic-version": "2023-06-01"}) as response:
            assert response.status == 404
            assert (await response.json())["error"]["type"] == "not_found_error"
        async with session.get(proxy_url + "/v1/messages") as response:
            assert response.status == 405
            assert (await response.json())["type"] == "error"
        async with session.get(proxy_url + "/health") as response:
            assert (await response.json())["status"] == "ok"


async def test_an_error_right_after_the_first_frame_is_still_an_http_error(
        upstream: FakeOpenAIUpstream, proxy_url: str) -> None:
    """The made-up message_start is not content: headers wait for the first real event."""
    role_chunk = text_stream(["x"])[0]
    upstream.scenario = Stream([role_chunk, error_chunk("Rate limit reached", "rate_limit_exceeded")],
                               delay=0.05)
    status, _, body = await post(proxy_url, {**BODY, "stream": True})
    assert status == 429 and body["error"]["type"] == "rate_limit_error"


async def test_a_slow_first_token_still_gets_headers_and_pings(
        upstream: FakeOpenAIUpstream, start_proxy: Any) -> None:
    url = await start_proxy(upstream_url=upstream.base_url, ping_interval=0.1)  # type: ignore[attr-defined]
    chunks = text_stream(["late"])
    upstream.scenario = Stream([chunks[0], b": thinking\n\n", *chunks[1:]], delay=0.35)
    async with aiohttp.ClientSession() as session, session.post(
            url + "/v1/messages", json={**BODY, "stream": True}) as response:
        assert response.status == 200
        raw = await response.read()
    frames = parse_anthropic_sse(raw)
    assert [n for n, _ in frames][:2] == ["message_start", "ping"]
    check_anthropic_stream(frames)


@pytest.mark.parametrize("content", [5, [{"type": "text", "text": 5}]])
async def test_a_bad_document_content_is_a_400_not_a_crash(proxy_url: str, content: Any) -> None:
    document = {"type": "document", "source": {"type": "content", "content": content}}
    body = {**BODY, "messages": [{"role": "user", "content": [document]}]}
    for path in ("/v1/messages", "/v1/messages/count_tokens"):
        status, _, answer = await post(proxy_url, body, path=path)
        assert status == 400 and answer["error"]["type"] == "invalid_request_error"


async def test_keep_alives_can_be_turned_off(upstream: FakeOpenAIUpstream,
                                             start_proxy: Any) -> None:
    url = await start_proxy(upstream_url=upstream.base_url, ping_interval=0)  # type: ignore[attr-defined]
    upstream.scenario = Stream(text_stream(["a", "b"]), delay=0.05)
    async with aiohttp.ClientSession() as session, session.post(
            url + "/v1/messages", json={**BODY, "stream": True}) as response:
        frames = parse_anthropic_sse(await response.read())
    assert "ping" not in [name for name, _ in frames]
    check_anthropic_stream(frames)


async def test_a_silent_upstream_still_gets_the_client_headers_and_pings(
        start_proxy: Any) -> None:
    """Before the upstream even sent its headers, PING_INTERVAL commits the response."""
    from aiohttp import web

    async def slow(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(0.8)
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        for chunk in text_stream(["late"]):
            await response.write(chunk)
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        url = await start_proxy(upstream_url=f"http://127.0.0.1:{runner.addresses[0][1]}/v1",
                                ping_interval=0.2)
        async with aiohttp.ClientSession() as session, session.post(
                url + "/v1/messages", json={**BODY, "stream": True}) as response:
            started = asyncio.get_running_loop().time()
            first = await response.content.readuntil(b"\n\n")
            assert asyncio.get_running_loop().time() - started < 0.6
            assert first.startswith(b"event: message_start")
            raw = first + await response.read()
        frames = parse_anthropic_sse(raw)
        assert "ping" in [name for name, _ in frames]
        assert [n for n, _ in frames].count("message_start") == 1  # the made-up one stands
        check_anthropic_stream(frames)
    finally:
        await runner.cleanup()


async def test_a_client_leaving_during_the_commit_wait_is_a_499_not_a_failure(
        upstream: FakeOpenAIUpstream, start_proxy: Any,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    url = await start_proxy(upstream_url=upstream.base_url, ping_interval=5)  # type: ignore[attr-defined]
    upstream.scenario = Stream(text_stream(["x"], with_done=False)[:1], hang_after=True)
    async with aiohttp.ClientSession() as session:
        with contextlib.suppress(asyncio.TimeoutError):
            async with session.post(url + "/v1/messages", json={**BODY, "stream": True},
                                    timeout=aiohttp.ClientTimeout(total=0.4)) as response:
                await response.read()
    await asyncio.wait_for(upstream.client_gone.wait(), timeout=2)
    await asyncio.sleep(0.05)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(" 499 " in r.getMessage() for r in caplog.records if r.name == "proxy.access")


async def test_redirects_are_not_followed(upstream: FakeOpenAIUpstream,
                                          start_proxy: Any) -> None:
    url = await start_proxy(upstream_url=upstream.base_url, upstream_api_key="sk-secret-0001")  # type: ignore[attr-defined]
    upstream.scenario = ErrorResponse(307, b"", headers={"location": "http://127.0.0.1:1/steal"})
    status, _, body = await post(url, BODY)
    assert status == 502 and body["error"]["type"] == "api_error"
    assert len(upstream.requests) == 1

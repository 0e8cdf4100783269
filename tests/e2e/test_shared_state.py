"""Shared state (issue 13) between two proxy instances on real ports, through a real
SQLite file and a real redis-server: a backboard conversation continues on the other
instance, a key one instance rested rests on both, an inbound key's rate window is one
window; the store killed and restarted mid-run; inbound keys."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import anthropic
import pytest

from proxy.providers import parse_providers
from tests.fakes.backboard_upstream import DEFAULT_KEY, FakeBackboard
from tests.fakes.openai_upstream import ErrorResponse, FakeOpenAIUpstream, error_body
from tests.state.conftest import RedisServer, own_redis, redis_bin  # noqa: F401 (fixtures)

MODEL = "claude-sonnet-4-6"
Urls = Callable[..., Awaitable[tuple[str, str]]]


@pytest.fixture(params=["sqlite", "redis"])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'state.sqlite3'}"
    server: RedisServer = request.getfixturevalue("own_redis")
    return f"{server.url}?prefix=t{uuid.uuid4().hex[:6]}:"


@pytest.fixture
def two(start_proxy: Any, state_url: str) -> Urls:
    """Two instances of the proxy sharing ``state_url``."""
    async def start(**settings: Any) -> tuple[str, str]:
        first = await start_proxy(state_url=state_url, **settings)
        second = await start_proxy(state_url=state_url, **settings)
        return first, second
    return start


async def ask(url: str, history: list[dict[str, Any]], text: str) -> str:
    history.append({"role": "user", "content": text})
    async with anthropic.AsyncAnthropic(base_url=url, api_key="x", max_retries=0) as client:
        message = await client.messages.create(
            model=MODEL, max_tokens=50, messages=history)  # type: ignore[arg-type]
    answer = "".join(b.text for b in message.content if b.type == "text")
    history.append({"role": "assistant", "content": answer})
    return answer


async def test_a_backboard_conversation_continues_on_the_other_instance(
        two: Urls, backboard_upstream: FakeBackboard) -> None:
    one, other = await two(upstream_url=backboard_upstream.base_url,
                           upstream_dialect="backboard", upstream_api_key=DEFAULT_KEY,
                           thread_pool_size=1)
    history: list[dict[str, Any]] = []
    await ask(one, history, "My name is Ada.")
    answer = await ask(other, history, "recall: first")
    assert "My name is Ada." in answer
    threads = {c.path.split("/")[-2] for c in backboard_upstream.routed("messages")}
    assert len(threads) == 1  # the other instance found the thread: no replay
    assert backboard_upstream.sent()[-1] == "recall: first"


async def test_a_key_one_instance_rested_rests_on_both(two: Urls,
                                                       upstream: FakeOpenAIUpstream) -> None:
    one, other = await two(upstream_url=upstream.base_url,  # type: ignore[attr-defined]
                           upstream_api_key="sk-key-one-0001,sk-key-two-0002")
    upstream.scenario = ErrorResponse(429, error_body("slow down"),
                                      headers={"retry-after": "120"})
    async with aiohttp.ClientSession() as session:
        async with session.post(one + "/v1/chat/completions", json={
                "model": "m", "messages": [{"role": "user", "content": "x"}]}) as response:
            assert response.status == 429  # both keys tried, both rested for 120 s
        await asyncio.sleep(1.1)  # the other instance's view of key health is a second old
        upstream.requests.clear()
        async with session.post(other + "/v1/chat/completions", json={
                "model": "m", "messages": [{"role": "user", "content": "x"}]}) as response:
            await response.read()
    # Every key rests, so the other instance sends one last-resort attempt, not one a key.
    assert len(upstream.requests) == 1


async def test_an_inbound_keys_rate_window_is_one_window(
        two: Urls, upstream: FakeOpenAIUpstream) -> None:
    file = parse_providers({
        "keys": [{"name": "alice", "key": "sk-alice-0123456789", "rpm": 2}],
        "providers": [{"base_url": upstream.base_url, "models": [{"id": "m"}]}]})  # type: ignore[attr-defined]
    one, other = await two(providers_file=file)
    statuses = []
    async with aiohttp.ClientSession(headers={"x-api-key": "sk-alice-0123456789"}) as session:
        for url in (one, other, one):
            async with session.post(url + "/v1/chat/completions", json={
                    "model": "m", "messages": [{"role": "user", "content": "x"}]}) as response:
                statuses.append(response.status)
                last = response
                body = await response.read()
    assert statuses == [200, 200, 429]
    assert 1 <= int(last.headers["retry-after"]) <= 60
    assert b"rpm" in body and len(upstream.requests) == 2


async def test_the_store_killed_and_restarted_mid_run(
        own_redis: RedisServer, start_proxy: Any, backboard_upstream: FakeBackboard,  # noqa: F811
        upstream: FakeOpenAIUpstream) -> None:
    state = f"{own_redis.url}?prefix=kill:"
    bb = await start_proxy(state_url=state, upstream_url=backboard_upstream.base_url,
                           upstream_dialect="backboard", upstream_api_key=DEFAULT_KEY,
                           thread_pool_size=1)
    plain = await start_proxy(state_url=state, upstream_url=upstream.base_url)  # type: ignore[attr-defined]
    history: list[dict[str, Any]] = []
    await ask(bb, history, "My name is Ada.")
    own_redis.kill()
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(anthropic.APIStatusError) as caught:
        await ask(bb, history, "recall: first")
    assert caught.value.status_code == 503 and "redis" in str(caught.value.body)
    assert loop.time() - started < 10  # a clear error within seconds, never a hang
    history.pop()
    async with aiohttp.ClientSession() as session:
        async with session.get(bb + "/health") as response:
            health = await response.json()
        assert health["status"] == "degraded" and health["store"]["ok"] is False
        # A request that does not need the store goes on.
        async with session.post(plain + "/v1/chat/completions", json={
                "model": "m", "messages": [{"role": "user", "content": "x"}]}) as response:
            assert response.status == 200
    own_redis.start()
    for _ in range(40):  # it recovers by itself: the cooldown is a few seconds
        try:
            await ask(bb, history[:-1] if history[-1]["role"] == "user" else history, "hi")
            break
        except anthropic.APIStatusError:
            history.pop()
            await asyncio.sleep(0.25)
    else:
        raise AssertionError("the proxy did not recover after the store came back")
    async with aiohttp.ClientSession() as session, session.get(bb + "/health") as response:
        assert (await response.json())["status"] == "ok"


async def test_inbound_keys_who_may_use_what(start_proxy: Any, upstream: FakeOpenAIUpstream,
                                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    file = parse_providers({
        "ak": "sk-admin-0123456789",
        "keys": [{"name": "alice", "key": "sk-alice-0123456789", "models": ["m"]}],
        "providers": [{"base_url": upstream.base_url,  # type: ignore[attr-defined]
                       "models": [{"id": "m"}, {"id": "n"}]}]})
    url = await start_proxy(providers_file=file, proxy_api_key="sk-admin-0123456789")

    async def status(key: str, model: str, path: str = "/v1/chat/completions") -> int:
        async with aiohttp.ClientSession() as session, session.post(url + path, headers={
                "authorization": f"Bearer {key}"}, json={
                "model": model, "messages": [{"role": "user", "content": "x"}]}) as response:
            return response.status

    assert await status("sk-alice-0123456789", "m") == 200
    assert await status("sk-alice-0123456789", "n") == 403
    assert await status("sk-admin-0123456789", "n") == 200
    assert await status("sk-nobody-000000000", "m") == 401
    assert await status("sk-alice-0123456789", "m", "/debug/clear") == 403
    assert await status("sk-admin-0123456789", "m", "/debug/clear") == 200
    access = [r.getMessage() for r in caplog.records if r.name == "proxy.access"]
    assert any("key=alice" in line for line in access)
    assert not any("sk-alice" in r.getMessage() for r in caplog.records)

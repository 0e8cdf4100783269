"""Shared fixtures: a fake OpenAI upstream and the real proxy app, each on a real port."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest
from aiohttp import web

from proxy.app import create_app, server_options
from proxy.config import Settings
from tests.fakes.anthropic_upstream import FakeAnthropicUpstream
from tests.fakes.openai_upstream import FakeOpenAIUpstream

ProxyFactory = Callable[..., Awaitable[str]]


@pytest.fixture
async def upstream() -> AsyncIterator[FakeOpenAIUpstream]:
    fake = FakeOpenAIUpstream()
    fake.base_url = await fake.start()  # type: ignore[attr-defined]
    yield fake
    await fake.stop()


@pytest.fixture
async def start_proxy() -> AsyncIterator[ProxyFactory]:
    """Start the real app on a free 127.0.0.1 port; returns its base URL."""
    runners: list[web.AppRunner] = []

    async def start(**settings: Any) -> str:
        config = replace(Settings(ping_interval=15.0), **settings)
        runner = web.AppRunner(create_app(config), **server_options())
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        return f"http://127.0.0.1:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
async def proxy_url(upstream: FakeOpenAIUpstream, start_proxy: ProxyFactory) -> str:
    """The proxy in front of the fake upstream, sending every request as upstream-model."""
    return await start_proxy(upstream_url=upstream.base_url,  # type: ignore[attr-defined]
                             model="upstream-model")


@pytest.fixture
async def anthropic_upstream() -> AsyncIterator[FakeAnthropicUpstream]:
    fake = FakeAnthropicUpstream()
    fake.base_url = await fake.start()  # type: ignore[attr-defined]
    yield fake
    await fake.stop()


@pytest.fixture
async def o2a_url(anthropic_upstream: FakeAnthropicUpstream, start_proxy: ProxyFactory) -> str:
    """The proxy serving OpenAI clients from the fake Anthropic upstream, base URL + /v1."""
    url = await start_proxy(upstream_url=anthropic_upstream.base_url,  # type: ignore[attr-defined]
                            upstream_dialect="anthropic", upstream_api_key="sk-ant-test-key",
                            model="claude-default")
    return url + "/v1"

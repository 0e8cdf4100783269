"""The fake Tavily server for the web tools tests, and a Tavily client talking to it."""

from collections.abc import AsyncIterator

import pytest

from proxy.web_tools.settings import TavilySettings
from proxy.web_tools.tavily import TavilyClient
from tests.fakes.tavily import KEY, FakeTavily, fake_tavily

__all__ = ["fake_tavily", "tavily"]


@pytest.fixture
async def tavily(fake_tavily: FakeTavily) -> AsyncIterator[TavilyClient]:
    async with TavilyClient(TavilySettings(api_key=KEY, base_url=fake_tavily.base_url,
                                           timeout=2.0)) as client:
        yield client

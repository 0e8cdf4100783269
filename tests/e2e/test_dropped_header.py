"""What a translation left out is told: x-llm-proxy-dropped on every translated answer
(empty when nothing was), never on a relayed one, and in the access line."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
import pytest

from tests.fakes.openai_upstream import FakeOpenAIUpstream

HELLO = [{"role": "user", "content": "hi"}]


async def test_translated_answers_say_what_was_dropped(proxy_url: str,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "proxy.access")
    async with aiohttp.ClientSession() as session:
        for extra, told in (({"top_k": 5}, "top_k"), ({}, "")):
            async with session.post(proxy_url + "/v1/messages", json={
                    "model": "m", "max_tokens": 5, "messages": HELLO, **extra}) as answer:
                assert answer.headers["x-llm-proxy-dropped"] == told
                await answer.read()
    lines = [r.getMessage() for r in caplog.records]
    assert any("dropped=top_k" in line for line in lines)


async def test_relayed_answers_carry_no_such_header(upstream: FakeOpenAIUpstream,
                                                    start_proxy: Any) -> None:
    url = await start_proxy(upstream_url=upstream.base_url)  # type: ignore[attr-defined]
    async with aiohttp.ClientSession() as session, session.post(
            url + "/v1/chat/completions", json={"model": "m", "messages": HELLO}) as answer:
        assert "x-llm-proxy-dropped" not in answer.headers
        await answer.read()

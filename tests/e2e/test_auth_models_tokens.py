"""Inbound auth and key pass-through, count_tokens, and the model list in both shapes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import anthropic
import openai
import pytest

from tests.fakes.openai_upstream import FakeOpenAIUpstream
from tests.support import parse_anthropic_sse

HELLO = [{"role": "user", "content": "hi"}]
CLAUDE_CODE_BODY = Path(__file__).parent.parent / "fixtures/claude_code/main_loop_request.json"


def upstream_auth(upstream: FakeOpenAIUpstream) -> str | None:
    return upstream.requests[-1]["headers"].get("authorization")


async def test_the_clients_key_passes_through_when_no_upstream_key(
        upstream: FakeOpenAIUpstream, proxy_url: str) -> None:
    async with anthropic.AsyncAnthropic(base_url=proxy_url, api_key="sk-user-own",
                                        max_retries=0) as api:
        await api.messages.create(model="m", max_tokens=5, messages=HELLO)  # type: ignore[arg-type]
    assert upstream_auth(upstream) == "Bearer sk-user-own"


async def test_the_upstream_key_wins(upstream: FakeOpenAIUpstream, start_proxy: Any) -> None:
    url = await start_proxy(upstream_url=upstream.base_url, upstream_api_key="sk-upstream")  # type: ignore[attr-defined]
    async with anthropic.AsyncAnthropic(base_url=url, api_key="sk-user-own", max_retries=0) as api:
        await api.messages.create(model="m", max_tokens=5, messages=HELLO)  # type: ignore[arg-type]
    assert upstream_auth(upstream) == "Bearer sk-upstream"


async def test_the_proxy_key_never_leaves_the_proxy(upstream: FakeOpenAIUpstream,
                                                   start_proxy: Any) -> None:
    url = await start_proxy(upstream_url=upstream.base_url, proxy_api_key="sk-proxy")  # type: ignore[attr-defined]
    async with anthropic.AsyncAnthropic(base_url=url, api_key="sk-proxy", max_retries=0) as bearer:
        await bearer.messages.create(model="m", max_tokens=5, messages=HELLO)  # type: ignore[arg-type]
    assert upstream_auth(upstream) is None
    async with aiohttp.ClientSession() as session, session.post(
            url + "/v1/messages", headers={"x-api-key": "sk-proxy"},
            json={"model": "m", "max_tokens": 5, "messages": HELLO}) as response:
        assert response.status == 200  # x-api-key works as well as Bearer
    async with anthropic.AsyncAnthropic(base_url=url, api_key="sk-wrong", max_retries=0) as wrong:
        with pytest.raises(anthropic.AuthenticationError) as caught:
            await wrong.messages.create(model="m", max_tokens=5, messages=HELLO)  # type: ignore[arg-type]
    assert caught.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    async with openai.AsyncOpenAI(base_url=url + "/v1", api_key="sk-wrong",
                                  max_retries=0) as openai_client:
        with pytest.raises(openai.AuthenticationError) as caught_openai:
            await openai_client.models.list()
    assert caught_openai.value.status_code == 401  # in OpenAI's shape on OpenAI paths


async def test_count_tokens_matches_message_start_and_takes_bursts(
        upstream: FakeOpenAIUpstream, proxy_url: str) -> None:
    body = json.loads(CLAUDE_CODE_BODY.read_text())
    async with anthropic.AsyncAnthropic(base_url=proxy_url, api_key="k", max_retries=0) as api:
        counted = await asyncio.gather(*(api.messages.count_tokens(
            model=body["model"], messages=body["messages"], system=body["system"],
            tools=body["tools"]) for _ in range(25)))
    assert len({c.input_tokens for c in counted}) == 1 and counted[0].input_tokens > 1000
    async with aiohttp.ClientSession() as session, session.post(
            proxy_url + "/v1/messages/count_tokens?beta=true", json=body) as response:
        assert (await response.json())["input_tokens"] == counted[0].input_tokens
    async with aiohttp.ClientSession() as session, session.post(
            proxy_url + "/v1/messages?beta=true", json=body) as response:
        raw = await response.read()
    start = parse_anthropic_sse(raw)[0][1]
    assert start["message"]["usage"]["input_tokens"] == counted[0].input_tokens


async def test_a_claude_code_sized_request_is_accepted(upstream: FakeOpenAIUpstream,
                                                       proxy_url: str) -> None:
    raw_body = CLAUDE_CODE_BODY.read_bytes()
    assert len(raw_body) > 90_000
    async with aiohttp.ClientSession() as session, session.post(
            proxy_url + "/v1/messages?beta=true", data=raw_body,
            headers={"content-type": "application/json", "anthropic-version": "2023-06-01",
                     "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14",
                     "x-app": "cli"}) as response:
        assert response.status == 200
        frames = parse_anthropic_sse(await response.read())
    assert frames[-1][0] == "message_stop"


async def test_models_in_the_askers_format(proxy_url: str) -> None:
    async with anthropic.AsyncAnthropic(base_url=proxy_url, api_key="k", max_retries=0) as api:
        listed = [m async for m in api.models.list()]
    assert [(m.id, m.type) for m in listed] == [("upstream-model", "model")]
    async with openai.AsyncOpenAI(base_url=proxy_url + "/v1", api_key="k",
                                  max_retries=0) as openai_client:
        page = await openai_client.models.list()
    assert [(m.id, m.object) for m in page.data] == [("upstream-model", "model")]


async def test_an_anthropic_key_never_goes_to_another_provider(
        upstream: FakeOpenAIUpstream, proxy_url: str) -> None:
    async with anthropic.AsyncAnthropic(base_url=proxy_url, api_key="sk-ant-api03-secret",
                                        max_retries=0) as api:
        await api.messages.create(model="m", max_tokens=5, messages=HELLO)  # type: ignore[arg-type]
    assert upstream_auth(upstream) is None

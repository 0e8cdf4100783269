"""Upstream keys never reach a client or a log (issue 8, item 1): every byte that comes
from an upstream and goes to a client or a log passes one redaction, for every key the
proxy holds, on the relay and on the translated path, before and after the stream."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
import anthropic
import openai
import pytest

from proxy.providers import parse_providers
from tests.fakes import anthropic_upstream as fake_anthropic
from tests.fakes.anthropic_upstream import FakeAnthropicUpstream
from tests.fakes.openai_upstream import (
    ErrorResponse,
    FakeOpenAIUpstream,
    JSONResponse,
    Stream,
    error_body,
    error_chunk,
    text_stream,
)

KEY = "sk-up-secret-123456"
HELLO = [{"role": "user", "content": "hi"}]


def leaked(caplog: pytest.LogCaptureFixture, *secrets: str) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if any(s in r.getMessage() or s in str(r.args) for s in secrets)]


@pytest.mark.parametrize("status", [400, 404, 422, 401, 429, 500])
async def test_a_relayed_openai_error_that_quotes_the_key_is_masked(
        upstream: FakeOpenAIUpstream, start_proxy: Any, status: int,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    url = await start_proxy(upstream_url=upstream.base_url, upstream_api_key=KEY)  # type: ignore[attr-defined]
    upstream.scenario = ErrorResponse(status, error_body(
        f"Incorrect API key provided: {KEY}. You can find your key at …"))
    async with aiohttp.ClientSession() as session, session.post(
            url + "/v1/chat/completions", json={"model": "m", "messages": HELLO}) as response:
        raw = await response.read()
    assert KEY.encode() not in raw and b"***" in raw
    assert not leaked(caplog, KEY)


async def test_a_relayed_text_error_body_is_masked_and_otherwise_unchanged(
        upstream: FakeOpenAIUpstream, start_proxy: Any) -> None:
    url = await start_proxy(upstream_url=upstream.base_url, upstream_api_key=KEY)  # type: ignore[attr-defined]
    upstream.scenario = ErrorResponse(404, f"no such route for key {KEY}\n".encode())
    async with aiohttp.ClientSession() as session, session.post(
            url + "/v1/chat/completions", json={"model": "m", "messages": HELLO}) as response:
        assert response.status == 404
        assert await response.read() == b"no such route for key ***\n"


async def test_a_relayed_anthropic_error_that_quotes_a_providers_file_key_is_masked(
        anthropic_upstream: FakeAnthropicUpstream, start_proxy: Any,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "sk-ant-api03-ABCDEFGHIJKLMNOP"
    file = parse_providers({"providers": [
        {"name": "anthropic", "kind": "anthropic", "base_url": anthropic_upstream.base_url,  # type: ignore[attr-defined]
         "api_key": secret, "models": [{"id": "claude-x"}]},
        {"name": "glm", "base_url": "http://127.0.0.1:9/v4", "api_key": "glmkey2.KLMNOPQRST",
         "models": [{"id": "glm"}]}]})
    url = await start_proxy(providers_file=file)
    anthropic_upstream.scenario = ErrorResponse(400, fake_anthropic.error_body(
        "invalid_request_error", f"key {secret} and glmkey2.KLMNOPQRST are not allowed"))
    async with anthropic.AsyncAnthropic(base_url=url, api_key="client", max_retries=0) as client:
        with pytest.raises(anthropic.BadRequestError) as caught:
            await client.messages.create(model="claude-x", max_tokens=5, messages=HELLO)  # type: ignore[arg-type]
    text = str(caught.value.body)
    assert secret not in text and "KLMNOPQRST" not in text and "***" in text
    assert not leaked(caplog, secret, "KLMNOPQRST")


async def test_a_translated_in_stream_error_that_quotes_the_key_is_masked(
        upstream: FakeOpenAIUpstream, start_proxy: Any,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    url = await start_proxy(upstream_url=upstream.base_url, upstream_api_key=KEY)  # type: ignore[attr-defined]
    upstream.scenario = Stream(text_stream(["Hello"])[:2] + [
        error_chunk(f"key {KEY} quota exhausted")], delay=0.02)
    async with anthropic.AsyncAnthropic(base_url=url, api_key="client", max_retries=0) as client:
        with pytest.raises(anthropic.APIStatusError) as caught:
            async with client.messages.stream(model="m", max_tokens=5, messages=HELLO) as s:  # type: ignore[arg-type]
                await s.get_final_message()
    assert KEY not in str(caught.value) and "***" in str(caught.value)
    assert not leaked(caplog, KEY)


async def test_a_200_json_error_body_that_quotes_the_key_is_masked(
        upstream: FakeOpenAIUpstream, start_proxy: Any,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    url = await start_proxy(upstream_url=upstream.base_url, upstream_api_key=KEY)  # type: ignore[attr-defined]
    upstream.scenario = JSONResponse({"error": {"message": f"key {KEY} is disabled"}})
    async with anthropic.AsyncAnthropic(base_url=url, api_key="client", max_retries=0) as client:
        with pytest.raises(anthropic.APIStatusError) as caught:
            await client.messages.create(model="m", max_tokens=5, messages=HELLO)  # type: ignore[arg-type]
    assert caught.value.status_code == 502
    assert KEY not in str(caught.value.body) and "***" in str(caught.value.body)
    assert not leaked(caplog, KEY)


async def test_the_clients_own_passed_through_key_is_masked_too(
        upstream: FakeOpenAIUpstream, start_proxy: Any) -> None:
    url = await start_proxy(upstream_url=upstream.base_url)  # type: ignore[attr-defined]
    own = "client-own-key-987654"
    upstream.scenario = Stream(text_stream(["Hi"])[:2] + [error_chunk(f"{own} is over quota")],
                               delay=0.02)
    client = openai.AsyncOpenAI(base_url=url + "/v1", api_key=own, max_retries=0)
    async with aiohttp.ClientSession() as session, session.post(
            url + "/v1/messages", json={"model": "m", "max_tokens": 5, "messages": HELLO,
                                        "stream": True},
            headers={"x-api-key": own}) as response:
        raw = await response.read()
    assert own.encode() not in raw and b"*** is over quota" in raw
    await client.close()

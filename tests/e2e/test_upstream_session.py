"""One ClientSession per process: every provider shares its pool of keep-alive
connections, while each provider's own cap on connections open at once still holds.
The real app on a real port, the anthropic SDK as the client, a fake OpenAI upstream."""

from __future__ import annotations

import asyncio
from typing import Any

import anthropic

from proxy.providers import parse_providers
from tests.fakes.openai_upstream import (
    ErrorResponse,
    FakeOpenAIUpstream,
    Stream,
    error_body,
    text_stream,
)

HELLO = [{"role": "user", "content": "hi"}]


def two_providers(fake: FakeOpenAIUpstream, **one: Any) -> Any:
    """Two providers of one host, as a gateway with two keys or two model families has."""
    base = fake.base_url  # type: ignore[attr-defined]
    return parse_providers({"providers": [
        {"name": "one", "base_url": base, "api_key": "sk-one",
         "models": [{"id": "alpha", "remote_id": "alpha-remote"}], **one},
        {"name": "two", "base_url": base, "api_key": "sk-two",
         "models": [{"id": "beta", "remote_id": "beta-remote"}]},
    ], "default_model": "alpha"})


async def ask(api: anthropic.AsyncAnthropic, model: str) -> str:
    async with api.messages.stream(model=model, max_tokens=5, messages=HELLO) as s:  # type: ignore[arg-type]
        message = await s.get_final_message()
    return message.content[0].text  # type: ignore[union-attr]


async def test_providers_of_one_host_share_its_keep_alive_connection(
        upstream: FakeOpenAIUpstream, start_proxy: Any) -> None:
    fake = upstream
    url = await start_proxy(providers_file=two_providers(fake))
    async with anthropic.AsyncAnthropic(base_url=url, api_key="k", max_retries=0) as api:
        for model in ["alpha", "beta"] * 3:
            assert await ask(api, model) == "Hi!"
    assert [r["body"]["model"] for r in fake.requests] == ["alpha-remote", "beta-remote"] * 3
    assert len(set(fake.peers)) == 1  # one pool: the second provider reused the first's


async def test_a_providers_connection_cap_holds_on_the_shared_session(
        upstream: FakeOpenAIUpstream, start_proxy: Any) -> None:
    fake = upstream
    fake.scenario = Stream(text_stream(["a", "b", "c", "d"]), delay=0.05)
    url = await start_proxy(providers_file=two_providers(fake, max_connections=1))
    async with anthropic.AsyncAnthropic(base_url=url, api_key="k", max_retries=0) as api:
        answers = await asyncio.gather(ask(api, "alpha"), ask(api, "alpha"))
    assert answers == ["abcd", "abcd"]
    # One at a time: the first stream ended (its last chunk written, before the terminator
    # that lets the proxy release its place) before the second request arrived.
    assert fake.events[:3] == ["start", "end", "start"]


async def test_a_capped_provider_retries_a_mended_request_without_waiting_on_itself(
        upstream: FakeOpenAIUpstream, start_proxy: Any) -> None:
    # The refusal's place is given back before the mended request asks for one: with a
    # cap of one, holding it would leave the retry waiting for ever.
    refusal = ErrorResponse(400, error_body(
        "Invalid max_tokens value, the valid range of max_tokens is [1, 8192]"))
    upstream.scenario = [refusal, Stream(text_stream(["ok"]))]
    url = await start_proxy(providers_file=two_providers(upstream, max_connections=1))
    async with anthropic.AsyncAnthropic(base_url=url, api_key="k", max_retries=0,
                                        timeout=10) as api, \
            api.messages.stream(model="alpha", max_tokens=32000,  # type: ignore[arg-type]
                                messages=HELLO) as s:
        message = await s.get_final_message()
    assert message.content[0].text == "ok"  # type: ignore[union-attr]
    assert [r["body"]["max_tokens"] for r in upstream.requests] == [32000, 8192]

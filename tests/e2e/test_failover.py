"""Several fake upstreams on real ports behind one proxy with a providers file: routing,
key rotation, retries and failover before the first byte, and no key in any log."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator
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
    Stream,
    error_body,
    error_chunk,
    text_stream,
)

HELLO = [{"role": "user", "content": "hi"}]


@pytest.fixture
async def fakes() -> AsyncIterator[list[FakeOpenAIUpstream]]:
    started = [FakeOpenAIUpstream(), FakeOpenAIUpstream(), FakeAnthropicUpstream()]
    for fake in started:
        fake.base_url = await fake.start()  # type: ignore[attr-defined]
    yield started
    for fake in started:
        await fake.stop()


def config(fakes: list[FakeOpenAIUpstream], **extra: Any) -> dict[str, Any]:
    one, two, ant = fakes
    return {"providers": [
        {"name": "one", "base_url": one.base_url, "api_key": "sk-one-aaaa,sk-one-bbbb",  # type: ignore[attr-defined]
         "models": [{"id": "alpha", "remote_id": "alpha-remote", "fallbacks": ["beta"]}]},
        {"name": "two", "base_url": two.base_url, "api_keys": ["sk-two-cccc"],  # type: ignore[attr-defined]
         "models": [{"id": "beta", "display_name": "Beta", "remote_id": "beta-remote"}]},
        {"name": "anthropic", "dialect": "anthropic", "base_url": ant.base_url,  # type: ignore[attr-defined]
         "api_key": "sk-ant-dddd", "models": [{"id": "claude-x", "remote_id": "claude-remote"}]},
    ], "aliases": {"haiku": "beta"}, "default_model": "beta", **extra}


async def proxy(start_proxy: Any, fakes: list[FakeOpenAIUpstream], **extra: Any) -> str:
    return await start_proxy(providers_file=parse_providers(config(fakes, **extra)))


def client(url: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=url, api_key="client-key", max_retries=0)


async def ask(url: str, model: str) -> str:
    async with client(url) as api, \
            api.messages.stream(model=model, max_tokens=5, messages=HELLO) as s:  # type: ignore[arg-type]
        message = await s.get_final_message()
    return message.content[0].text  # type: ignore[union-attr]


async def test_routing_by_id_alias_prefix_and_default(fakes: list[Any], start_proxy: Any) -> None:
    one, two, ant = fakes
    url = await proxy(start_proxy, fakes)
    await ask(url, "alpha")
    assert one.requests[-1]["body"]["model"] == "alpha-remote"
    await ask(url, "claude-haiku-4-5")  # alias by family
    assert two.requests[-1]["body"]["model"] == "beta-remote"
    await ask(url, "something-else")  # default
    assert len(two.requests) == 2
    await ask(url, "claude-x")  # an id on the Anthropic provider: relayed
    assert ant.requests[-1]["body"]["model"] == "claude-remote"
    assert ant.requests[-1]["headers"]["x-api-key"] == "sk-ant-dddd"
    await ask(url, "claude-other")  # the prefix rule: claude -> the provider "anthropic"
    assert ant.requests[-1]["body"]["model"] == "claude-other"


async def test_keys_rotate_and_a_failing_key_rests(fakes: list[Any], start_proxy: Any) -> None:
    one = fakes[0]
    url = await proxy(start_proxy, fakes)
    for _ in range(4):
        await ask(url, "alpha")
    used = [r["headers"]["authorization"] for r in one.requests]
    assert used == ["Bearer sk-one-aaaa", "Bearer sk-one-bbbb"] * 2
    one.requests.clear()
    ok = Stream(text_stream(["ok"]))
    refused = ErrorResponse(401, error_body("bad key"))
    # Key a is refused on each of its turns; every request still succeeds on key b.
    one.scenario = [refused, ok, refused, ok, refused, ok, ok, ok, ok]
    for _ in range(5):
        assert await ask(url, "alpha") == "ok"
    keys = [r["headers"]["authorization"][-4:] for r in one.requests]
    assert keys[:6] == ["aaaa", "bbbb", "aaaa", "bbbb", "aaaa", "bbbb"]
    assert keys[6:] == ["bbbb", "bbbb"]  # a failed three times in a row: it rests


async def test_a_429_with_retry_after_fails_over_to_the_fallback(
        fakes: list[Any], start_proxy: Any) -> None:
    one, two, _ = fakes
    url = await proxy(start_proxy, fakes)
    one.scenario = ErrorResponse(429, error_body("slow down"), headers={"retry-after": "30"})
    two.scenario = Stream(text_stream(["from two"]))
    assert await ask(url, "alpha") == "from two"
    assert len(one.requests) == 2  # both keys of provider one, then the fallback
    assert two.requests[-1]["body"]["model"] == "beta-remote"
    assert await ask(url, "alpha") == "from two"  # both keys of one now rest
    assert len(one.requests) == 2


async def test_an_upstream_that_dies_before_the_first_byte_fails_over(
        fakes: list[Any], start_proxy: Any) -> None:
    one, two, _ = fakes
    url = await proxy(start_proxy, fakes)
    one.scenario = Stream([text_stream(["x"])[0]], cut_after=1)  # role chunk, then cut
    two.scenario = Stream(text_stream(["saved"]))
    assert await ask(url, "alpha") == "saved"


async def test_an_upstream_that_dies_after_the_first_byte_is_not_retried(
        fakes: list[Any], start_proxy: Any) -> None:
    one, two, _ = fakes
    url = await proxy(start_proxy, fakes)
    one.scenario = Stream([*text_stream(["partial", "more"])[:2],
                           error_chunk("backend crashed", "server_error")], delay=0.05)
    async with aiohttp.ClientSession() as session, session.post(
            url + "/v1/messages", json={"model": "alpha", "max_tokens": 5, "messages": HELLO,
                                        "stream": True}) as response:
        raw = await response.read()
    assert response.status == 200 and b"event: error" in raw and b"message_stop" not in raw
    assert b"partial" in raw
    assert two.requests == []  # bytes had gone out: no failover


async def test_an_unreachable_provider_fails_over(fakes: list[Any], start_proxy: Any) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
        cfg = config(fakes)
        cfg["providers"][0]["base_url"] = dead
        url = await start_proxy(providers_file=parse_providers(cfg))
        fakes[1].scenario = Stream(text_stream(["alive"]))
        assert await ask(url, "alpha") == "alive"


async def test_the_relay_fails_over_too(fakes: list[Any], start_proxy: Any) -> None:
    one, two, ant = fakes
    cfg = config(fakes)
    cfg["providers"][2]["api_key"] = "sk-ant-eeee,sk-ant-ffff"
    url = await start_proxy(providers_file=parse_providers(cfg))
    ant.scenario = [ErrorResponse(529, fake_anthropic.error_body("overloaded_error", "busy")),
                    Stream(fake_anthropic.text_stream(["relayed"]))]
    assert await ask(url, "claude-x") == "relayed"
    assert [r["headers"]["x-api-key"] for r in ant.requests] == ["sk-ant-eeee", "sk-ant-ffff"]
    ant.scenario = ErrorResponse(529, fake_anthropic.error_body("overloaded_error", "busy"))
    with pytest.raises(anthropic.APIStatusError) as caught:
        await ask(url, "claude-x")
    assert caught.value.status_code == 529  # the upstream's own refusal, relayed


async def test_models_list_the_configured_ones(fakes: list[Any], start_proxy: Any) -> None:
    url = await proxy(start_proxy, fakes)
    async with client(url) as api:
        listed = [(m.id, m.display_name) async for m in api.models.list()]
    assert ("beta", "Beta") in listed and ("alpha", "alpha") in listed
    async with openai.AsyncOpenAI(base_url=url + "/v1", api_key="k") as openai_client:
        page = await openai_client.models.list()
    assert {m.id for m in page.data} == {"alpha", "beta", "claude-x"}


async def test_an_unknown_model_without_default_is_a_404_listing_ids(
        fakes: list[Any], start_proxy: Any) -> None:
    url = await proxy(start_proxy, fakes, default_model="", prefixes={})
    with pytest.raises(anthropic.NotFoundError, match="alpha, beta, claude-x"):
        await ask(url, "nope")


async def test_no_key_reaches_a_log(fakes: list[Any], start_proxy: Any,
                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    one, two, _ = fakes
    url = await proxy(start_proxy, fakes)
    one.scenario = ErrorResponse(401, error_body("Incorrect API key provided: sk-one-aaaa"))
    two.scenario = ErrorResponse(429, error_body("quota for sk-two-cccc"),
                                 headers={"retry-after": "1"})
    with pytest.raises(anthropic.APIStatusError):
        await ask(url, "alpha")
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "upstream answered" in logged
    for key in ("sk-one-aaaa", "sk-one-bbbb", "sk-two-cccc", "sk-ant-dddd", "client-key"):
        assert key not in logged


async def test_count_tokens_for_an_unrouted_model_is_counted_here(
        fakes: list[Any], start_proxy: Any) -> None:
    url = await proxy(start_proxy, fakes, default_model="", prefixes={})
    async with client(url) as api:
        counted = await api.messages.count_tokens(model="nope", messages=HELLO)  # type: ignore[arg-type]
        again = await api.messages.count_tokens(model="nope", messages=HELLO)  # type: ignore[arg-type]
    assert counted.input_tokens == again.input_tokens > 0


async def test_a_relay_falls_back_to_the_other_dialect_translated(
        fakes: list[Any], start_proxy: Any) -> None:
    one, _, ant = fakes
    cfg = config(fakes)
    cfg["providers"][2]["models"][0]["fallbacks"] = ["alpha"]  # claude-x -> alpha (OpenAI)
    cfg["providers"][0]["models"][0]["fallbacks"] = ["claude-x"]  # alpha -> claude-x
    url = await start_proxy(providers_file=parse_providers(cfg))
    ant.scenario = ErrorResponse(529, fake_anthropic.error_body("overloaded_error", "busy"))
    one.scenario = Stream(text_stream(["translated"]))
    assert await ask(url, "claude-x") == "translated"  # Anthropic client: relay, then alpha
    assert one.requests[-1]["body"]["model"] == "alpha-remote"
    one.scenario = ErrorResponse(503, error_body("busy"))
    ant.scenario = Stream(fake_anthropic.text_stream(["from claude"]))
    async with openai.AsyncOpenAI(base_url=url + "/v1", api_key="k", max_retries=0) as api:
        answer = await api.chat.completions.create(model="alpha", messages=HELLO)  # type: ignore[arg-type]
    assert answer.choices[0].message.content == "from claude"  # OpenAI client: relay, then claude-x
    assert ant.requests[-1]["body"]["model"] == "claude-remote"

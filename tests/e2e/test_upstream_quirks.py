"""Upstreams that misbehave in the ways real ones do: refusing Claude Code's max_tokens or
effort, going quiet after finishing, and echoing keys; and no key in any log line."""

from __future__ import annotations

import logging
import time
from typing import Any

import anthropic
import pytest

from tests.fakes.openai_upstream import (
    ErrorResponse,
    FakeOpenAIUpstream,
    Stream,
    error_body,
    sse,
    text_stream,
)

HELLO = [{"role": "user", "content": "hi"}]


def client(url: str, key: str = "sk-client-key-123456") -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=url, api_key=key, max_retries=0)


async def test_a_refused_max_tokens_is_mended_once_and_remembered(
        upstream: FakeOpenAIUpstream, proxy_url: str) -> None:
    refusal = ErrorResponse(400, error_body(
        "Invalid max_tokens value, the valid range of max_tokens is [1, 8192]"))
    upstream.scenario = [refusal, Stream(text_stream(["ok"]))]
    async with client(proxy_url) as api:
        async with api.messages.stream(model="m", max_tokens=32000, messages=HELLO) as s:  # type: ignore[arg-type]
            message = await s.get_final_message()
        assert message.content[0].text == "ok"  # type: ignore[union-attr]
        assert [r["body"]["max_tokens"] for r in upstream.requests] == [32000, 8192]
        async with api.messages.stream(model="m", max_tokens=32000, messages=HELLO) as s:  # type: ignore[arg-type]
            await s.get_final_message()
    assert upstream.requests[-1]["body"]["max_tokens"] == 8192  # remembered: no new 400
    assert len(upstream.requests) == 3


async def test_an_unsupported_reasoning_effort_is_dropped(upstream: FakeOpenAIUpstream,
                                                          proxy_url: str) -> None:
    refusal = ErrorResponse(400, error_body(
        "Unsupported parameter: 'reasoning_effort' is not supported with this model."))
    upstream.scenario = [refusal, Stream(text_stream(["ok"]))]
    async with client(proxy_url) as api:
        await api.messages.create(  # type: ignore[call-overload]
            model="m", max_tokens=10, messages=HELLO,
            extra_body={"output_config": {"effort": "high"}})
    assert upstream.requests[0]["body"]["reasoning_effort"] == "high"
    assert "reasoning_effort" not in upstream.requests[1]["body"]


async def test_a_400_that_cannot_be_mended_is_passed_on(upstream: FakeOpenAIUpstream,
                                                        proxy_url: str) -> None:
    upstream.scenario = ErrorResponse(400, error_body("messages: bad things"))
    async with client(proxy_url) as api:
        with pytest.raises(anthropic.BadRequestError, match="bad things"):
            await api.messages.create(model="m", max_tokens=10, messages=HELLO)  # type: ignore[arg-type]
    assert len(upstream.requests) == 1  # no blind retry


async def test_an_upstream_quiet_after_finishing_does_not_hang_the_client(
        upstream: FakeOpenAIUpstream, start_proxy: Any) -> None:
    url = await start_proxy(upstream_url=upstream.base_url, read_timeout=0.5)  # type: ignore[attr-defined]
    finished = text_stream(["done"], usage=None, with_done=False)  # finish_reason, no usage
    upstream.scenario = Stream(finished, hang_after=True)
    started = time.monotonic()
    async with client(url) as api, \
            api.messages.stream(model="m", max_tokens=5, messages=HELLO) as s:  # type: ignore[arg-type]
        final = await s.get_final_message()
    assert final.stop_reason == "end_turn" and final.content[0].text == "done"  # type: ignore[union-attr]
    assert time.monotonic() - started < 5


async def test_no_key_reaches_a_log_or_a_client(upstream: FakeOpenAIUpstream,
                                                start_proxy: Any,
                                                caplog: pytest.LogCaptureFixture) -> None:
    secrets = ["sk-upstream-secret-0001", "sk-proxy-secret-0002"]
    url = await start_proxy(upstream_url=upstream.base_url,  # type: ignore[attr-defined]
                            upstream_api_key=secrets[0], proxy_api_key=secrets[1])
    caplog.set_level(logging.DEBUG)
    upstream.scenario = [
        Stream(text_stream(["fine"])),
        ErrorResponse(401, error_body(f"Incorrect API key provided: {secrets[0]}")),
        Stream([sse({"error": {"message": "boom", "type": "server_error"}})]),
    ]
    async with client(url, key=secrets[1]) as api:
        await api.messages.create(model="m", max_tokens=5, messages=HELLO)  # type: ignore[arg-type]
        with pytest.raises(anthropic.APIStatusError) as caught:
            await api.messages.create(model="m", max_tokens=5, messages=HELLO)  # type: ignore[arg-type]
        # The proxy's own upstream key was refused: the proxy's fault, a 502, not the client's 401.
        assert caught.value.status_code == 502 and "refused the proxy's key" in str(caught.value.body)
        assert secrets[0] not in str(caught.value.body)
        with pytest.raises(anthropic.APIStatusError):
            await api.messages.create(model="m", max_tokens=5, messages=HELLO)  # type: ignore[arg-type]
    async with client(url, key="sk-wrong-key-0003") as wrong:
        with pytest.raises(anthropic.AuthenticationError):
            await wrong.messages.create(
                model="m", max_tokens=5, messages=HELLO)  # type: ignore[arg-type]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "upstream answered 401" in logged  # the logs did see these requests
    for secret in [*secrets, "sk-wrong-key-0003"]:
        assert secret not in logged

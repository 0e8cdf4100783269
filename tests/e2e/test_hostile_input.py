"""Hostile input through the real app and the official SDKs: a client's malformed request
is a 400 naming its field (which the SDKs do not retry), and an upstream that answers
nothing at all is a 502, never a 200 with an empty answer nor a stream the SDK chokes on."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import anthropic
import openai
import pytest

from tests.fakes.anthropic_upstream import FakeAnthropicUpstream
from tests.fakes.anthropic_upstream import frame as anthropic_frame
from tests.fakes.openai_upstream import FakeOpenAIUpstream, Stream, done

HELLO: Any = [{"role": "user", "content": "hi"}]


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def anthropic_client(url: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=url, api_key="k", max_retries=0)


async def post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
    async with aiohttp.ClientSession() as session, session.post(
            url, data=json.dumps(body), headers={"content-type": "application/json"}) as r:
        return r.status, dict(r.headers), await r.json()


async def test_a_document_media_type_that_is_not_a_string(proxy_url: str) -> None:
    block = {"type": "document", "source": {"type": "base64", "media_type": 5, "data": "QQ=="}}
    async with anthropic_client(proxy_url) as api:
        with pytest.raises(anthropic.BadRequestError) as caught:
            await api.messages.create(
                model="m", max_tokens=5, messages=[{"role": "user", "content": [block]}])
    assert caught.value.response.headers["x-should-retry"] == "false"
    assert "messages.0.content.0.source.media_type" in caught.value.message


@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/count_tokens"])
async def test_a_tool_schema_nested_300_deep(proxy_url: str, path: str) -> None:
    body = {"model": "m", "max_tokens": 5, "messages": HELLO,
            "tools": [{"name": "t", "input_schema": nested(300)}]}
    status, headers, answer = await post(proxy_url + path, body)
    assert status == 400 and headers["x-should-retry"] == "false"
    assert answer["error"]["message"].startswith("tools.0.input_schema.a")


async def test_a_relayed_body_too_deep_to_rename_its_model(
        anthropic_upstream: FakeAnthropicUpstream, start_proxy: Any) -> None:
    url = await start_proxy(upstream_url=anthropic_upstream.base_url,  # type: ignore[attr-defined]
                            upstream_dialect="anthropic", upstream_api_key="sk-ant-test-key",
                            model="claude-default", model_override="true")
    body = {"model": "another-name", "max_tokens": 5, "messages": HELLO,
            "metadata": nested(300)}
    status, _, answer = await post(url + "/v1/messages", body)
    assert status == 400 and "200 levels" in answer["error"]["message"]
    assert anthropic_upstream.requests == []


async def test_a_relayed_body_that_keeps_its_model_goes_up_unparsed(
        anthropic_upstream: FakeAnthropicUpstream, start_proxy: Any) -> None:
    """Nothing is written again, so its depth is the upstream's to judge: byte for byte."""
    url = await start_proxy(upstream_url=anthropic_upstream.base_url,  # type: ignore[attr-defined]
                            upstream_dialect="anthropic", upstream_api_key="sk-ant-test-key")
    anthropic_upstream.strict = False
    raw = json.dumps({"model": "claude-x", "max_tokens": 5, "messages": HELLO,
                      "metadata": nested(300)}).encode()
    async with aiohttp.ClientSession() as session, session.post(
            url + "/v1/messages", data=raw, headers={"content-type": "application/json"}) as r:
        await r.read()
    assert anthropic_upstream.requests[-1]["body"] == json.loads(raw)


@pytest.mark.parametrize(("fields", "param"), [
    ({"reasoning_effort": [1]}, "reasoning_effort"),
    ({"reasoning": {"effort": ["high"]}}, "reasoning.effort"),
    ({"tool_choice": {"type": "allowed_tools", "allowed_tools": "x"},
      "tools": [{"type": "function", "function": {"name": "f"}}]}, "tool_choice.allowed_tools"),
    ({"modalities": 5}, "modalities"),
])
async def test_mistyped_openai_fields(o2a_url: str, fields: dict[str, Any], param: str) -> None:
    async with openai.AsyncOpenAI(base_url=o2a_url, api_key="k", max_retries=0) as api:
        with pytest.raises(openai.BadRequestError) as caught:
            await api.chat.completions.create(model="m", messages=HELLO, extra_body=fields)
    assert caught.value.param == param  # type: ignore[attr-defined]
    assert caught.value.response.headers["x-should-retry"] == "false"


@pytest.mark.parametrize("assistant", [{"tool_calls": 5}, {"refusal": 5}])
async def test_mistyped_assistant_fields(o2a_url: str, assistant: dict[str, Any]) -> None:
    async with openai.AsyncOpenAI(base_url=o2a_url, api_key="k", max_retries=0) as api:
        messages: Any = [*HELLO, {"role": "assistant", **assistant}, *HELLO]
        with pytest.raises(openai.BadRequestError):
            await api.chat.completions.create(model="m", messages=messages)


@pytest.mark.parametrize("stream", [False, True])
async def test_an_upstream_that_sends_only_done(upstream: FakeOpenAIUpstream, proxy_url: str,
                                                stream: bool) -> None:
    upstream.scenario = Stream([done()])
    async with anthropic_client(proxy_url) as api:
        with pytest.raises(anthropic.InternalServerError) as caught:
            if stream:
                async with api.messages.stream(model="m", max_tokens=5, messages=HELLO) as s:
                    await s.get_final_message()
            else:
                await api.messages.create(model="m", max_tokens=5, messages=HELLO)
    assert caught.value.status_code == 502
    assert "without any content" in caught.value.message


@pytest.mark.parametrize("stream", [False, True])
async def test_an_anthropic_upstream_that_sends_only_message_stop(
        anthropic_upstream: FakeAnthropicUpstream, o2a_url: str, stream: bool) -> None:
    anthropic_upstream.scenario = Stream([anthropic_frame({"type": "message_stop"})])
    async with openai.AsyncOpenAI(base_url=o2a_url, api_key="k", max_retries=0) as api:
        with pytest.raises(openai.InternalServerError) as caught:
            if stream:
                async for _ in await api.chat.completions.create(model="m", messages=HELLO,
                                                                 stream=True):
                    pass
            else:
                await api.chat.completions.create(model="m", messages=HELLO)
    assert caught.value.status_code == 502
    assert "before message_start" in caught.value.message

"""What a relay must not take on trust from one party to pass to another.

The model: a relay is routed, and an inbound key's models are checked, by the model the
upstream will read. A body that names one in another letter case ("Model", which Go's
encoding/json reads as "model") is refused in the client's dialect, never relayed; one
that names it twice goes up rewritten with the one model it was routed by. Cookies: an
upstream's are never kept for the next request."""

from __future__ import annotations

from typing import Any

import aiohttp
import anthropic
import openai
import pytest

from tests.fakes import openai_upstream as fake_openai
from tests.fakes.anthropic_upstream import FakeAnthropicUpstream
from tests.fakes.openai_upstream import FakeOpenAIUpstream, JSONResponse

HELLO = [{"role": "user", "content": "hi"}]


async def test_an_openai_body_with_a_second_model_key_is_refused(
        upstream: FakeOpenAIUpstream, start_proxy: Any) -> None:
    url = await start_proxy(upstream_url=upstream.base_url)  # type: ignore[attr-defined]
    async with openai.AsyncOpenAI(base_url=url + "/v1", api_key="k", max_retries=0) as api:
        with pytest.raises(openai.BadRequestError) as refused:
            await api.chat.completions.create(model="cheap", messages=HELLO,  # type: ignore[arg-type]
                                              extra_body={"MODEL": "dear"})
    assert "'MODEL'" in refused.value.message
    assert upstream.requests == []


async def test_an_anthropic_body_with_a_second_model_key_is_refused(
        anthropic_upstream: FakeAnthropicUpstream, start_proxy: Any) -> None:
    url = await start_proxy(upstream_url=anthropic_upstream.base_url,  # type: ignore[attr-defined]
                            upstream_dialect="anthropic")
    async with anthropic.AsyncAnthropic(base_url=url, api_key="k", max_retries=0) as api:
        with pytest.raises(anthropic.BadRequestError) as refused:
            await api.messages.create(model="cheap", max_tokens=5, messages=HELLO,  # type: ignore[arg-type]
                                      extra_body={"Model": "dear"})
    assert "'Model'" in refused.value.message
    assert anthropic_upstream.requests == []


async def test_a_body_naming_its_model_twice_goes_up_with_one(
        upstream: FakeOpenAIUpstream, start_proxy: Any) -> None:
    """gjson reads the first of two keys, orjson and Go the last: the upstream gets one."""
    url = await start_proxy(upstream_url=upstream.base_url)  # type: ignore[attr-defined]
    raw = b'{"messages":[{"role":"user","content":"hi"}],"model":"dear","model":"cheap"}'
    async with aiohttp.ClientSession() as session, session.post(
            url + "/v1/chat/completions", data=raw,
            headers={"content-type": "application/json"}) as response:
        assert response.status == 200
        await response.read()
    sent = upstream.requests[-1]["raw"]
    assert sent.count(b'"model"') == 1 and upstream.requests[-1]["body"]["model"] == "cheap"


async def test_an_upstreams_cookie_is_never_sent_with_another_request(
        upstream: FakeOpenAIUpstream, start_proxy: Any) -> None:
    """The upstream session keeps no cookies: one client's is not another's. (By a host
    name: aiohttp's jar takes none from an IP address.)"""
    by_name = upstream.base_url.replace("127.0.0.1", "localhost")  # type: ignore[attr-defined]
    url = await start_proxy(upstream_url=by_name)
    answer = fake_openai.chat_completion("ok")
    upstream.scenario = [JSONResponse(answer, headers={"set-cookie": "session=alice; Path=/"}),
                         JSONResponse(answer)]
    for client in ("alice", "bob"):  # each with a client of its own, which keeps its cookies
        async with openai.AsyncOpenAI(base_url=url + "/v1", api_key=client,
                                      max_retries=0) as api:
            reply = await api.chat.completions.create(model="m", messages=HELLO)  # type: ignore[arg-type]
            assert reply.choices[0].message.content == "ok"
    assert [sent["headers"].get("cookie") for sent in upstream.requests] == [None, None]

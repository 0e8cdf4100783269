"""Same dialect on both sides: the body goes up as it came (model changed only when it
must be), the upstream's bytes, status and headers come back unchanged and unbuffered."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import anthropic
import openai
import orjson

from tests.fakes import anthropic_upstream as fake_anthropic
from tests.fakes import openai_upstream as fake_openai
from tests.fakes.anthropic_upstream import FakeAnthropicUpstream
from tests.fakes.openai_upstream import ErrorResponse, FakeOpenAIUpstream, Stream

HELLO = [{"role": "user", "content": "hi"}]


async def read_timed(response: aiohttp.ClientResponse) -> tuple[bytes, list[float]]:
    data, times = bytearray(), []
    async for chunk in response.content.iter_any():
        data += chunk
        times.append(time.monotonic())
    return bytes(data), times


async def test_anthropic_to_anthropic_bytes_unchanged_and_unbuffered(
        anthropic_upstream: FakeAnthropicUpstream, start_proxy: Any) -> None:
    url = await start_proxy(upstream_url=anthropic_upstream.base_url,  # type: ignore[attr-defined]
                            upstream_dialect="anthropic", proxy_api_key="sk-proxy-own-key")
    anthropic_upstream.strict = False  # no key goes up here, on purpose
    chunks = fake_anthropic.thinking_stream(["hm"], "sig", ["Hello", " world"])
    anthropic_upstream.scenario = Stream(chunks, delay=0.05,
                                         headers={"request-id": "req_upstream_1"})
    body = {"model": "claude-x", "max_tokens": 20, "messages": HELLO, "stream": True}
    raw_body = orjson.dumps(body)
    started = time.monotonic()
    async with aiohttp.ClientSession() as session, session.post(
            url + "/v1/messages?beta=true", data=raw_body,
            headers={"x-api-key": "sk-proxy-own-key", "anthropic-version": "2023-06-01",
                     "anthropic-beta": "interleaved-thinking-2025-05-14",
                     "content-type": "application/json", "x-custom": "kept"}) as response:
        data, times = await read_timed(response)
        headers = response.headers
    assert data == b"".join(chunks)  # byte for byte
    assert times[0] - started < 0.05 * len(chunks) / 2  # the first bytes came early
    assert len(times) >= len(chunks) // 2  # and the rest as they came, not in one lump
    assert headers["request-id"] == "req_upstream_1"
    sent = anthropic_upstream.requests[-1]
    assert sent["query"] == "beta=true"
    assert sent["body"] == body  # nothing changed, not even the key order
    assert sent["headers"]["anthropic-beta"] == "interleaved-thinking-2025-05-14"
    assert sent["headers"]["x-custom"] == "kept"
    assert "x-api-key" not in sent["headers"]  # the proxy's own key never leaves it
    assert "authorization" not in sent["headers"]


async def test_anthropic_relay_keeps_error_status_and_body(
        anthropic_upstream: FakeAnthropicUpstream, start_proxy: Any) -> None:
    url = await start_proxy(upstream_url=anthropic_upstream.base_url,  # type: ignore[attr-defined]
                            upstream_dialect="anthropic", upstream_api_key="sk-ant-upstream")
    error = fake_anthropic.error_body("overloaded_error", "Overloaded")
    anthropic_upstream.scenario = ErrorResponse(529, error, headers={"retry-after": "9"})
    async with anthropic.AsyncAnthropic(base_url=url, api_key="sk-client", max_retries=0) as api:
        try:
            await api.messages.create(model="c", max_tokens=5, messages=HELLO)  # type: ignore[arg-type]
        except anthropic.APIStatusError as exc:
            assert exc.status_code == 529 and exc.body == error
            assert exc.response.headers["retry-after"] == "9"
        else:
            raise AssertionError("expected the upstream's 529")
    assert anthropic_upstream.requests[-1]["headers"]["x-api-key"] == "sk-ant-upstream"


async def test_anthropic_sdk_through_the_relay_and_count_tokens(
        anthropic_upstream: FakeAnthropicUpstream, start_proxy: Any) -> None:
    url = await start_proxy(upstream_url=anthropic_upstream.base_url,  # type: ignore[attr-defined]
                            upstream_dialect="anthropic", model="claude-forced",
                            model_override="true")
    anthropic_upstream.scenario = Stream(fake_anthropic.tool_use_stream(
        [("toolu_1", "f", ["", '{"a":', " 1}"])]))
    async with anthropic.AsyncAnthropic(base_url=url, api_key="sk-client", max_retries=0) as api:
        async with api.messages.stream(model="claude-x", max_tokens=5, messages=HELLO) as s:  # type: ignore[arg-type]
            final = await s.get_final_message()
        assert final.content[0].input == {"a": 1}  # type: ignore[union-attr]
        assert anthropic_upstream.requests[-1]["body"]["model"] == "claude-forced"
        counted = await api.messages.count_tokens(model="claude-x", messages=HELLO)  # type: ignore[arg-type]
    assert counted.input_tokens == len(orjson.dumps(
        anthropic_upstream.requests[-1]["body"])) // 4 or counted.input_tokens > 0
    assert anthropic_upstream.requests[-1]["path"] == "/v1/messages/count_tokens"


async def test_openai_to_openai_bytes_unchanged(upstream: FakeOpenAIUpstream,
                                                start_proxy: Any) -> None:
    url = await start_proxy(upstream_url=upstream.base_url)  # type: ignore[attr-defined]
    chunks = fake_openai.tool_calls_stream([("c1", "f", ['{"x"', ": 1}"])], text_before="Hi")
    upstream.scenario = Stream(chunks, delay=0.02)
    body = {"model": "gpt-x", "messages": HELLO, "stream": True,
            "stream_options": {"include_usage": True}}
    async with aiohttp.ClientSession() as session, session.post(
            url + "/v1/chat/completions", json=body,
            headers={"authorization": "Bearer sk-user"}) as response:
        data, times = await read_timed(response)
    assert data == b"".join(chunks)
    assert len(times) > 3
    sent = upstream.requests[-1]
    assert sent["body"] == body and sent["headers"]["authorization"] == "Bearer sk-user"


async def test_openai_sdk_through_the_relay_with_model_override(
        upstream: FakeOpenAIUpstream, start_proxy: Any) -> None:
    url = await start_proxy(upstream_url=upstream.base_url, model="served-model")  # type: ignore[attr-defined]
    upstream.scenario = Stream(fake_openai.text_stream(["A", "B"]))
    async with openai.AsyncOpenAI(base_url=url + "/api/v1", api_key="k", max_retries=0) as api:
        async with api.chat.completions.stream(model="asked", messages=HELLO) as stream:  # type: ignore[arg-type]
            final = await stream.get_final_completion()
        assert final.choices[0].message.content == "AB"
        assert upstream.requests[-1]["body"]["model"] == "served-model"
        upstream.scenario = ErrorResponse(404, fake_openai.error_body("no such model",
                                                                      code="model_not_found"))
        try:
            await api.chat.completions.create(model="asked", messages=HELLO)  # type: ignore[arg-type]
        except openai.NotFoundError as exc:
            assert exc.code == "model_not_found"
        else:
            raise AssertionError("expected the upstream's 404")


async def test_a_relay_cut_mid_stream_ends_with_an_error_frame(
        upstream: FakeOpenAIUpstream, start_proxy: Any) -> None:
    url = await start_proxy(upstream_url=upstream.base_url)  # type: ignore[attr-defined]
    upstream.scenario = Stream(fake_openai.text_stream(["a", "b", "c"]), cut_after=2)
    async with aiohttp.ClientSession() as session, session.post(
            url + "/v1/chat/completions",
            json={"model": "m", "messages": HELLO, "stream": True}) as response:
        data = await response.read()
    assert b"[DONE]" not in data
    assert data.rstrip().splitlines()[-1].startswith(b'data: {"error"')


async def test_relayed_usage_and_errors_reach_the_log(
        anthropic_upstream: FakeAnthropicUpstream, start_proxy: Any,
        caplog: Any) -> None:
    import logging
    caplog.set_level(logging.INFO)
    url = await start_proxy(upstream_url=anthropic_upstream.base_url,  # type: ignore[attr-defined]
                            upstream_dialect="anthropic", upstream_api_key="sk-ant-k")
    anthropic_upstream.scenario = [
        Stream(fake_anthropic.text_stream(["ok"], usage=(40, 7, 3, 0))),
        ErrorResponse(400, fake_anthropic.error_body("invalid_request_error", "bad field x"))]
    async with anthropic.AsyncAnthropic(base_url=url, api_key="k", max_retries=0) as api:
        async with api.messages.stream(model="c", max_tokens=5, messages=HELLO) as s:  # type: ignore[arg-type]
            await s.get_final_message()
        try:
            await api.messages.create(model="c", max_tokens=5, messages=HELLO)  # type: ignore[arg-type]
        except anthropic.BadRequestError:
            pass
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("proxy")]
    access = [line for line in lines if "/v1/messages" in line and " 200 " in line]
    assert access and "tokens_in=43 tokens_out=7" in access[-1]
    assert "stop_reason=end_turn" in access[-1]
    assert any("bad field x" in line for line in lines)


async def test_compressed_bodies_are_relayed_plain_both_ways(upstream: FakeOpenAIUpstream,
                                                             start_proxy: Any) -> None:
    import gzip

    url = await start_proxy(upstream_url=upstream.base_url)  # type: ignore[attr-defined]
    payload = gzip.compress(orjson.dumps({"model": "m", "messages": HELLO}))
    upstream.scenario = fake_openai.JSONResponse(fake_openai.chat_completion("zipped"))
    async with aiohttp.ClientSession() as session, session.post(
            url + "/v1/chat/completions", data=payload,
            headers={"content-type": "application/json", "content-encoding": "gzip"}) as r:
        body = await r.json()
    assert r.status == 200 and body["choices"][0]["message"]["content"] == "zipped"
    assert "content-encoding" not in upstream.requests[-1]["headers"]
    assert upstream.requests[-1]["body"]["messages"] == HELLO


async def test_a_strange_request_id_is_replaced(proxy_url: str) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(proxy_url + "/health", headers={"x-request-id": "abc/../x"}) as r:
            assert r.headers["x-request-id"].startswith("req_")
        async with session.get(proxy_url + "/health", headers={"x-request-id": "trace-42"}) as r:
            assert r.headers["x-request-id"] == "trace-42"

"""The official anthropic SDK, against the real app on a real port, over a fake OpenAI
upstream: text, thinking, parallel tools, a tool round trip, and the raw event grammar."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import anthropic
import pytest

from tests.fakes.openai_upstream import (
    FakeOpenAIUpstream,
    Stream,
    reasoning_stream,
    text_stream,
    tool_calls_stream,
)
from tests.support import check_anthropic_stream, parse_anthropic_sse

HELLO = [{"role": "user", "content": "hi"}]
TOOLS = [{"name": "get_weather", "description": "Weather for a city",
          "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]


def client(url: str, **kw: Any) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=url, api_key="sk-client", max_retries=0, **kw)


async def raw_stream(url: str, body: dict[str, Any]) -> bytes:
    async with aiohttp.ClientSession() as session, session.post(
            f"{url}/v1/messages?beta=true", json=body,
            headers={"anthropic-version": "2023-06-01"}) as response:
        assert response.status == 200, await response.text()
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-accel-buffering"] == "no"
        return await response.read()


async def test_create_without_streaming(upstream: FakeOpenAIUpstream, proxy_url: str) -> None:
    upstream.scenario = Stream(text_stream(["Hello", ", world"], usage=(30, 5, 10)))
    async with client(proxy_url) as api:
        message = await api.messages.create(
            model="claude-sonnet-4-5", max_tokens=50, messages=HELLO)
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].text == "Hello, world"  # type: ignore[union-attr]
    assert message.model == "claude-sonnet-4-5"
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.cache_read_input_tokens,
            message.usage.output_tokens) == (20, 10, 5)
    sent = upstream.requests[-1]["body"]
    assert sent["model"] == "upstream-model" and sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}


async def test_stream_helper_accumulates_thinking_and_text(
        upstream: FakeOpenAIUpstream, proxy_url: str) -> None:
    upstream.scenario = Stream(reasoning_stream(["Let me ", "think."], ["The answer", " is 4."]))
    async with client(proxy_url) as api, api.messages.stream(
            model="claude-opus-4", max_tokens=100, messages=HELLO) as stream:
        texts = [text async for text in stream.text_stream]
        final = await stream.get_final_message()
    assert "".join(texts) == "The answer is 4."
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert final.content[0].thinking == "Let me think."  # type: ignore[union-attr]
    assert final.content[0].signature == ""  # type: ignore[union-attr]


async def test_parallel_interleaved_tool_calls(upstream: FakeOpenAIUpstream,
                                               proxy_url: str) -> None:
    upstream.scenario = Stream(tool_calls_stream([
        ("call_a", "get_weather", ['{"ci', 'ty": ', '"Paris"', "}"]),
        ("call_b", "get_weather", ['{"city"', ': "Tok', 'yo"}'])], interleave=True), delay=0.01)  # one read each: the proxy joins what arrives together
    partials: list[str] = []
    async with client(proxy_url) as api, api.messages.stream(
            model="m", max_tokens=100, messages=HELLO, tools=TOOLS) as stream:  # type: ignore[arg-type]
        async for event in stream:
            if event.type == "input_json":
                partials.append(event.partial_json)
        final = await stream.get_final_message()
    uses = [(b.id, b.input) for b in final.content if b.type == "tool_use"]
    assert uses == [("call_a", {"city": "Paris"}), ("call_b", {"city": "Tokyo"})]
    assert final.stop_reason == "tool_use"
    assert len(partials) >= 5  # fragments, not one buffered blob
    sent = upstream.requests[-1]["body"]
    assert sent["tools"][0] == {"type": "function", "function": {
        "name": "get_weather", "description": "Weather for a city",
        "parameters": TOOLS[0]["input_schema"]}}


async def test_raw_events_follow_the_grammar(upstream: FakeOpenAIUpstream,
                                             proxy_url: str) -> None:
    upstream.scenario = Stream(tool_calls_stream(
        [("c1", "get_weather", ['{"city": "Oslo"}'])], text_before="Checking."))
    raw = await raw_stream(proxy_url, {"model": "m", "max_tokens": 10, "messages": HELLO,
                                       "tools": TOOLS, "stream": True})
    frames = parse_anthropic_sse(raw)
    check_anthropic_stream(frames)
    assert [n for n, _ in frames] == [
        "message_start", "content_block_start", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_stop",
        "message_delta", "message_stop"]
    assert frames[0][1]["message"]["usage"]["input_tokens"] > 0  # the estimate, not 0
    async with client(proxy_url) as api:
        events = api.messages.create(model="m", max_tokens=10, messages=HELLO, stream=True)
        types = [event.type async for event in await events]
    assert types[0] == "message_start" and types[-1] == "message_stop"


async def test_a_full_tool_round_trip(upstream: FakeOpenAIUpstream, proxy_url: str) -> None:
    upstream.scenario = [
        Stream(tool_calls_stream([("call_1", "get_weather", ['{"city":', ' "Rome"}'])])),
        Stream(text_stream(["It is ", "sunny in Rome."])),
    ]
    async with client(proxy_url) as api:
        history: list[Any] = [{"role": "user", "content": "Weather in Rome?"}]
        first = await api.messages.create(model="m", max_tokens=100, messages=history,
                                          tools=TOOLS)  # type: ignore[arg-type]
        assert first.stop_reason == "tool_use"
        use = next(b for b in first.content if b.type == "tool_use")
        history += [{"role": "assistant", "content": [b.model_dump(exclude_none=True)
                                                      for b in first.content]},
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id,
                                                  "content": "18C, sunny"}]}]
        second = await api.messages.create(model="m", max_tokens=100, messages=history,
                                           tools=TOOLS)  # type: ignore[arg-type]
    assert second.content[0].text == "It is sunny in Rome."  # type: ignore[union-attr]
    sent = upstream.requests[-1]["body"]["messages"]
    assert sent[-2]["tool_calls"][0]["id"] == "call_1"
    assert sent[-2]["tool_calls"][0]["function"]["arguments"] == '{"city":"Rome"}'
    assert sent[-1] == {"role": "tool", "tool_call_id": "call_1", "content": "18C, sunny"}


async def test_no_stream_key_means_not_streaming(upstream: FakeOpenAIUpstream,
                                                 proxy_url: str) -> None:
    async with aiohttp.ClientSession() as session, session.post(
            f"{proxy_url}/v1/messages", json={"model": "m", "max_tokens": 5,
                                              "messages": HELLO}) as response:
        body = await response.json()
    assert response.status == 200 and body["type"] == "message"
    assert body["content"] == [{"type": "text", "text": "Hi!"}]


async def test_pings_fill_idle_gaps(upstream: FakeOpenAIUpstream, start_proxy: Any) -> None:
    url = await start_proxy(upstream_url=upstream.base_url, ping_interval=0.05)  # type: ignore[attr-defined]
    upstream.scenario = Stream(text_stream(["slow", " answer"]), delay=0.2)
    raw = await raw_stream(url, {"model": "m", "max_tokens": 5, "messages": HELLO,
                                 "stream": True})
    frames = parse_anthropic_sse(raw)
    assert any(name == "ping" for name, _ in frames)
    check_anthropic_stream(frames)


async def test_an_upstream_that_ignores_stream_true(upstream: FakeOpenAIUpstream,
                                                    proxy_url: str) -> None:
    from tests.fakes.openai_upstream import JSONResponse, chat_completion
    upstream.scenario = JSONResponse(chat_completion(
        "Whole answer", finish_reason="tool_calls", tool_calls=[("c9", "get_weather", '{"city": "Lima"}')]))
    async with client(proxy_url) as api, \
            api.messages.stream(model="m", max_tokens=5, messages=HELLO) as s:
        final = await s.get_final_message()
    assert final.content[1].input == {"city": "Lima"}  # type: ignore[union-attr]


async def test_many_concurrent_streams_keep_their_own_state(
        upstream: FakeOpenAIUpstream, proxy_url: str) -> None:
    upstream.scenario = Stream(tool_calls_stream(
        [("a", "get_weather", ['{"city"', ': "X"}']), ("b", "get_weather", ['{}'])],
        interleave=True, text_before="Hm."), delay=0.001)
    async with client(proxy_url) as api:
        async def one() -> list[str]:
            async with api.messages.stream(model="m", max_tokens=5, messages=HELLO) as s:
                final = await s.get_final_message()
            return [b.type for b in final.content]

        results = await asyncio.gather(*(one() for _ in range(30)))
    assert all(r == ["text", "tool_use", "tool_use"] for r in results)


@pytest.mark.parametrize("query", ["", "?beta=true", "?beta=true&x=1"])
async def test_any_query_string(upstream: FakeOpenAIUpstream, proxy_url: str,
                                query: str) -> None:
    async with aiohttp.ClientSession() as session, session.post(
            f"{proxy_url}/v1/messages{query}",
            json={"model": "m", "max_tokens": 5, "messages": HELLO}) as response:
        assert response.status == 200

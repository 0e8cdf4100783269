"""The official openai SDK, against the real app on a real port, over a fake Anthropic
upstream: text, thinking, parallel tools with the stream helper, usage, errors."""

from __future__ import annotations

from typing import Any

import aiohttp
import openai
import pytest

from tests.fakes.anthropic_upstream import (
    ErrorResponse,
    FakeAnthropicUpstream,
    Stream,
    error_body,
    error_event,
    text_stream,
    thinking_stream,
    tool_use_stream,
)
from tests.support import decode_sse

HELLO = [{"role": "user", "content": "hi"}]
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]


def client(url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=url, api_key="sk-client", max_retries=0)


async def test_create_without_streaming(anthropic_upstream: FakeAnthropicUpstream,
                                        o2a_url: str) -> None:
    anthropic_upstream.scenario = Stream(text_stream(["Hello", " there"],
                                                     usage=(20, 5, 10, 0)))
    async with client(o2a_url) as api:
        completion = await api.chat.completions.create(
            model="claude-sonnet-4-5", messages=[{"role": "system", "content": "Be brief."},
                                                 *HELLO])  # type: ignore[list-item]
    assert completion.choices[0].message.content == "Hello there"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "claude-sonnet-4-5"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (30, 5)
    assert completion.usage.prompt_tokens_details.cached_tokens == 10  # type: ignore[union-attr]
    sent = anthropic_upstream.requests[-1]
    assert sent["body"]["system"] == "Be brief." and sent["body"]["max_tokens"] == 16384
    assert sent["body"]["model"] == "claude-sonnet-4-5"  # the request's own model wins
    assert sent["headers"]["x-api-key"] == "sk-ant-test-key"
    assert sent["headers"]["anthropic-version"] == "2023-06-01"


async def test_raw_stream_chunks(anthropic_upstream: FakeAnthropicUpstream,
                                 o2a_url: str) -> None:
    anthropic_upstream.scenario = Stream(thinking_stream(["Let me ", "think."], "sig-1",
                                                         ["Four."]))
    async with aiohttp.ClientSession() as session, session.post(
            o2a_url + "/chat/completions",
            json={"model": "c", "messages": HELLO, "stream": True,
                  "stream_options": {"include_usage": True}}) as response:
        raw = await response.read()
    events, truncated = decode_sse([raw])
    assert not truncated and all(e.event is None for e in events)
    assert events[-1].data == "[DONE]"
    import orjson
    chunks = [orjson.loads(e.data) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert sum("role" in c["choices"][0]["delta"] for c in chunks if c["choices"]) == 1
    assert {c["id"] for c in chunks} == {chunks[0]["id"]}
    reasoning = "".join(c["choices"][0]["delta"].get("reasoning_content", "")
                        for c in chunks if c["choices"])
    assert reasoning == "Let me think."
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 12
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"


async def test_stream_helper_with_parallel_tools_and_usage(
        anthropic_upstream: FakeAnthropicUpstream, o2a_url: str) -> None:
    anthropic_upstream.scenario = Stream(tool_use_stream([
        ("toolu_a", "get_weather", ["", '{"ci', 'ty": "Pa', 'ris"}']),
        ("toolu_b", "get_weather", ["", '{"city"', ': "Tokyo"}'])], text_before="Checking."))
    async with client(o2a_url) as api, api.chat.completions.stream(
            model="claude-x", messages=HELLO, tools=TOOLS,  # type: ignore[arg-type]
            stream_options={"include_usage": True}) as stream:
        async for _ in stream:
            pass
        final = await stream.get_final_completion()
    message = final.choices[0].message
    assert message.content == "Checking."
    calls = [(c.id, c.function.name, c.function.arguments) for c in message.tool_calls or []]
    assert calls == [("toolu_a", "get_weather", '{"city": "Paris"}'),
                     ("toolu_b", "get_weather", '{"city": "Tokyo"}')]
    assert final.choices[0].finish_reason == "tool_calls"
    assert final.usage is not None and final.usage.total_tokens == 25 + 12
    sent = anthropic_upstream.requests[-1]["body"]
    assert sent["tools"] == [{"name": "get_weather", "description": "Weather for a city",
                              "input_schema": TOOLS[0]["function"]["parameters"]}]


async def test_a_tool_round_trip(anthropic_upstream: FakeAnthropicUpstream,
                                 o2a_url: str) -> None:
    anthropic_upstream.scenario = [
        Stream(tool_use_stream([("toolu_1", "get_weather", ['{"city": "Rome"}'])])),
        Stream(text_stream(["Sunny."]))]
    async with client(o2a_url) as api:
        first = await api.chat.completions.create(model="c", messages=HELLO, tools=TOOLS)  # type: ignore[arg-type]
        call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
        history: list[Any] = [*HELLO, first.choices[0].message.model_dump(exclude_none=True),
                              {"role": "tool", "tool_call_id": call.id, "content": "18C"},
                              {"role": "tool", "tool_call_id": call.id + "x", "content": "n/a"},
                              {"role": "user", "content": "thanks"}]
        second = await api.chat.completions.create(model="c", messages=history, tools=TOOLS)  # type: ignore[arg-type]
    assert second.choices[0].message.content == "Sunny."
    turns = anthropic_upstream.requests[-1]["body"]["messages"]
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    assert turns[1]["content"] == [{"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                                    "input": {"city": "Rome"}}]
    assert [b["type"] for b in turns[2]["content"]] == ["tool_result", "tool_result", "text"]


async def test_an_error_event_mid_stream(anthropic_upstream: FakeAnthropicUpstream,
                                         o2a_url: str) -> None:
    anthropic_upstream.scenario = Stream([*text_stream(["Part"])[:4], error_event()])
    async with aiohttp.ClientSession() as session, session.post(
            o2a_url + "/chat/completions",
            json={"model": "c", "messages": HELLO, "stream": True}) as response:
        raw = await response.read()
    assert b"[DONE]" not in raw and b'"finish_reason":"stop"' not in raw
    assert raw.rstrip().endswith(b"}}") and b'"error"' in raw.splitlines()[-2]
    async with client(o2a_url) as api:
        with pytest.raises(openai.APIError, match="Overloaded"):
            stream = await api.chat.completions.create(
                model="c", messages=HELLO, stream=True)  # type: ignore[arg-type]
            async for _ in stream:
                pass


async def test_a_cut_connection(anthropic_upstream: FakeAnthropicUpstream,
                                o2a_url: str) -> None:
    anthropic_upstream.scenario = Stream(text_stream(["a", "b", "c"]), cut_after=5)
    async with client(o2a_url) as api:
        with pytest.raises(openai.APIError):
            stream = await api.chat.completions.create(
                model="c", messages=HELLO, stream=True)  # type: ignore[arg-type]
            async for _ in stream:
                pass


@pytest.mark.parametrize(("upstream_status", "error_type", "status", "sdk_error"), [
    (529, "overloaded_error", 503, openai.InternalServerError),
    (429, "rate_limit_error", 429, openai.RateLimitError),
    (400, "invalid_request_error", 400, openai.BadRequestError),
])
async def test_upstream_errors_in_openai_shape(
        anthropic_upstream: FakeAnthropicUpstream, o2a_url: str, upstream_status: int,
        error_type: str, status: int, sdk_error: type[Exception]) -> None:
    anthropic_upstream.scenario = ErrorResponse(upstream_status, error_body(error_type, "nope"),
                                                headers={"retry-after": "3"})
    async with client(o2a_url) as api:
        with pytest.raises(sdk_error) as caught:
            await api.chat.completions.create(model="c", messages=HELLO)  # type: ignore[arg-type]
    error: Any = caught.value
    assert error.status_code == status and error.body["message"] == "nope"
    assert error.response.headers["retry-after"] == "3"


@pytest.mark.parametrize(("extra", "param"), [
    ({"n": 2}, "n"), ({"logprobs": True}, "logprobs"),
    ({"messages": [{"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": "x", "format": "wav"}}]}]},
     "messages.0.content.0.type"),
    ({"tools": [{"type": "custom", "custom": {"name": "x"}}]}, "tools.0.type"),
])
async def test_what_cannot_be_honoured_is_a_400(o2a_url: str, extra: dict[str, Any],
                                                param: str) -> None:
    async with client(o2a_url) as api:
        with pytest.raises(openai.BadRequestError) as caught:
            await api.chat.completions.create(
                **{"model": "c", "messages": HELLO, **extra})
    assert caught.value.param == param  # type: ignore[attr-defined]


async def test_model_default_and_api_prefix(anthropic_upstream: FakeAnthropicUpstream,
                                            o2a_url: str) -> None:
    async with aiohttp.ClientSession() as session, session.post(
            o2a_url.replace("/v1", "/api/v1") + "/chat/completions",
            json={"messages": HELLO}) as response:
        body = await response.json()
    assert response.status == 200 and body["object"] == "chat.completion"
    assert anthropic_upstream.requests[-1]["body"]["model"] == "claude-default"


async def test_claude_code_header_profile_is_off_by_default_and_configurable(
        anthropic_upstream: FakeAnthropicUpstream, o2a_url: str, start_proxy: Any) -> None:
    async with client(o2a_url) as api:
        await api.chat.completions.create(model="c", messages=HELLO)  # type: ignore[arg-type]
    plain = anthropic_upstream.requests[-1]["headers"]
    assert plain["user-agent"].startswith("llm-dialect-proxy/") and "x-app" not in plain
    url = await start_proxy(upstream_url=anthropic_upstream.base_url,  # type: ignore[attr-defined]
                            upstream_dialect="anthropic", upstream_api_key="sk-ant-k",
                            claude_code_headers=True, anthropic_beta="extra-beta-1",
                            claude_code_profile='{"User-Agent": "claude-cli/9.9.9 (external, cli)"}')
    async with client(url + "/v1") as api:
        await api.chat.completions.create(model="c", messages=HELLO)  # type: ignore[arg-type]
    sent = anthropic_upstream.requests[-1]["headers"]
    assert sent["user-agent"] == "claude-cli/9.9.9 (external, cli)" and sent["x-app"] == "cli"
    betas = sent["anthropic-beta"].split(",")
    assert "claude-code-20250219" in betas and "extra-beta-1" in betas


async def test_thinking_is_left_out_of_a_tool_loop_it_cannot_sign(
        anthropic_upstream: FakeAnthropicUpstream, o2a_url: str) -> None:
    async with client(o2a_url) as api:
        await api.chat.completions.create(model="c", messages=HELLO, reasoning_effort="high")  # type: ignore[arg-type]
        assert anthropic_upstream.requests[-1]["body"]["thinking"]["type"] == "enabled"
        history: list[Any] = [*HELLO, {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather",
                                                              "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}]
        await api.chat.completions.create(model="c", messages=history, tools=TOOLS,  # type: ignore[arg-type]
                                          reasoning_effort="high")
    assert "thinking" not in anthropic_upstream.requests[-1]["body"]


async def test_system_prompt_only_where_the_request_has_none(
        anthropic_upstream: FakeAnthropicUpstream, start_proxy: Any) -> None:
    url = await start_proxy(upstream_url=anthropic_upstream.base_url,  # type: ignore[attr-defined]
                            upstream_dialect="anthropic", upstream_api_key="sk-ant-k",
                            system_prompt="You are helpful.")
    async with client(url + "/v1") as api:
        await api.chat.completions.create(model="c", messages=HELLO)  # type: ignore[arg-type]
        assert anthropic_upstream.requests[-1]["body"]["system"] == "You are helpful."
        await api.chat.completions.create(model="c", messages=[  # type: ignore[arg-type]
            {"role": "developer", "content": "Mine."}, *HELLO])
    assert anthropic_upstream.requests[-1]["body"]["system"] == "Mine."

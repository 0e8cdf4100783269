"""The fake Anthropic upstream and the Anthropic stream fixtures behave as advertised."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anthropic
import pytest

from tests.fakes.anthropic_upstream import (
    ErrorResponse,
    FakeAnthropicUpstream,
    JSONResponse,
    Stream,
    error_body,
    error_event,
    message,
    text_stream,
    thinking_stream,
    tool_use_stream,
)
from tests.support import FIXTURES, check_anthropic_stream, parse_anthropic_sse

HEADERS = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
BODY: dict[str, Any] = {"model": "claude-x", "max_tokens": 64,
                        "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[FakeAnthropicUpstream, str]]:
    fake = FakeAnthropicUpstream()
    base = await fake.start()
    yield fake, base
    await fake.stop()


def _frames(chunks: list[bytes]) -> list[tuple[str, dict[str, Any]]]:
    return parse_anthropic_sse(b"".join(chunks))


async def test_streams_text_and_records_request(
    upstream: tuple[FakeAnthropicUpstream, str],
) -> None:
    fake, base = upstream
    assert base.startswith("http://127.0.0.1:") and not base.endswith("/v1")
    fake.scenario = Stream(text_stream(["Hel", "lo"], usage=(5, 2, 3, 4)))
    async with aiohttp.ClientSession() as s, s.post(
        f"{base}/v1/messages?beta=true", json={**BODY, "stream": True}, headers=HEADERS,
    ) as r:
        assert r.status == 200 and r.content_type == "text/event-stream"
        frames = parse_anthropic_sse(await r.read())
    check_anthropic_stream(frames)
    assert [n for n, _ in frames][:3] == ["message_start", "content_block_start", "ping"]
    usage = frames[0][1]["message"]["usage"]
    assert (usage["input_tokens"], usage["cache_read_input_tokens"],
            usage["cache_creation_input_tokens"]) == (5, 3, 4)
    assert "".join(d["delta"]["text"] for n, d in frames if n == "content_block_delta") == "Hello"
    assert frames[-2][1]["usage"] == {"output_tokens": 2}
    assert fake.requests == [{"path": "/v1/messages", "query": "beta=true",
                              "headers": fake.requests[0]["headers"],
                              "body": {**BODY, "stream": True},
                              "raw": fake.requests[0]["raw"]}]
    assert json.loads(fake.requests[0]["raw"]) == {**BODY, "stream": True}  # the bytes sent
    assert fake.requests[0]["headers"]["x-api-key"] == "k"


async def test_sdk_accepts_streams_and_messages_strictly(
    upstream: tuple[FakeAnthropicUpstream, str],
) -> None:
    fake, base = upstream
    fake.scenario = [
        Stream(thinking_stream(["Let me", " think."], "c2ln", ["Four."])),
        Stream(tool_use_stream([("toolu_01A", "get_weather", ["", '{"city":', ' "Paris"}'])],
                               text_before="Checking.")),
        JSONResponse(message("Hi!", usage=(9, 3, 0, 0))),
    ]
    async with anthropic.AsyncAnthropic(api_key="k", base_url=base, max_retries=0,
                                        _strict_response_validation=True) as client:
        async with client.messages.stream(**BODY) as stream:
            final = await stream.get_final_message()
        assert [b.type for b in final.content] == ["thinking", "text"]
        assert final.content[0].signature == "c2ln"  # type: ignore[union-attr]
        async with client.messages.stream(**BODY) as stream:
            final = await stream.get_final_message()
        assert final.stop_reason == "tool_use"
        assert final.content[1].input == {"city": "Paris"}  # type: ignore[union-attr]
        reply = await client.messages.create(**BODY)
        assert reply.content[0].text == "Hi!" and reply.usage.output_tokens == 3
    headers = fake.requests[0]["headers"]
    assert "anthropic-version" in headers and "authorization" in headers


async def test_error_scenarios_models_and_count_tokens(
    upstream: tuple[FakeAnthropicUpstream, str],
) -> None:
    fake, base = upstream
    fake.models = ["claude-a", "claude-b"]
    fake.scenario = [ErrorResponse(529, error_body("overloaded_error", "Overloaded"),
                                   headers={"retry-after": "1"}),
                     ErrorResponse(500, b"oops")]
    async with aiohttp.ClientSession(headers=HEADERS) as s:
        async with s.get(f"{base}/v1/models?limit=20") as r:
            data = await r.json()
            assert [m["id"] for m in data["data"]] == ["claude-a", "claude-b"]
            assert data["data"][0]["type"] == "model" and data["has_more"] is False
            assert (data["first_id"], data["last_id"]) == ("claude-a", "claude-b")
        async with s.get(f"{base}/v1/models/claude-b") as r:
            assert (await r.json())["id"] == "claude-b"
        async with s.get(f"{base}/v1/models/nope") as r:
            assert r.status == 404
        async with s.post(f"{base}/v1/messages/count_tokens", json=BODY) as r:
            assert await r.json() == {"input_tokens": len(json.dumps(BODY)) // 4}
        async with s.post(f"{base}/v1/messages", json=BODY) as r:
            assert r.status == 529 and r.headers["retry-after"] == "1"
            assert (await r.json())["error"]["type"] == "overloaded_error"
        for _ in range(2):  # the last scenario repeats
            async with s.post(f"{base}/v1/messages", json=BODY) as r:
                assert r.status == 500 and await r.read() == b"oops"
    assert fake.requests[0]["query"] == "limit=20"


async def test_cut_connection_is_a_payload_error(
    upstream: tuple[FakeAnthropicUpstream, str],
) -> None:
    fake, base = upstream
    chunks = text_stream(["a", "b", "c"])
    fake.scenario = Stream(chunks, cut_after=4)
    got = b""
    async with aiohttp.ClientSession(headers=HEADERS) as s, s.post(
            f"{base}/v1/messages", json=BODY) as r:
        with pytest.raises(aiohttp.ClientPayloadError):
            async for data in r.content.iter_any():
                got += data
    assert got == b"".join(chunks[:4])


_MSG = [{"role": "user", "content": "q"}]
_TOOL_TURNS = [{"role": "user", "content": "q"},
               {"role": "assistant", "content": [
                   {"type": "tool_use", "id": "functions.f:0", "name": "f", "input": {}}]}]
REJECTIONS: list[tuple[dict[str, str], dict[str, Any], int, str]] = [
    ({"anthropic-version": "2023-06-01"}, BODY, 401, "authentication_error"),
    ({"x-api-key": "k"}, BODY, 400, "anthropic-version"),
    (HEADERS, {**BODY, "n": 2}, 400, "n: Extra inputs are not permitted"),
    (HEADERS, {k: v for k, v in BODY.items() if k != "max_tokens"}, 400, "max_tokens: Field"),
    (HEADERS, {**BODY, "messages": [{"role": "user", "content": [{"type": "text", "text": ""}]}]},
     400, "text content blocks must be non-empty"),
    (HEADERS, {**BODY, "system": [{"type": "text", "text": ""}]}, 400, "system: text content"),
    (HEADERS, {**BODY, "messages": _TOOL_TURNS}, 400, "messages.1.content.0.tool_use.id"),
    (HEADERS, {**BODY, "messages": [*_MSG, {"role": "assistant", "content": "a"},
                                    {"role": "user", "content": ""}]}, 400, "messages.2:"),
]


@pytest.mark.parametrize(("headers", "body", "status", "needle"), REJECTIONS)
async def test_strict_rejections(upstream: tuple[FakeAnthropicUpstream, str],
                                 headers: dict[str, str], body: dict[str, Any],
                                 status: int, needle: str) -> None:
    fake, base = upstream
    async with aiohttp.ClientSession(headers=headers) as s:
        async with s.post(f"{base}/v1/messages", json=body) as r:
            assert r.status == status
            err = await r.json()
        assert err["type"] == "error" and needle in json.dumps(err["error"])
        assert err["error"]["type"] == ("authentication_error" if status == 401
                                        else "invalid_request_error")
        assert fake._served == 0  # no scenario consumed
        fake.strict = False
        async with s.post(f"{base}/v1/messages", json=body) as r:
            assert r.status == 200
    assert len(fake.requests) == 2


async def test_strict_accepts_valid_bodies(upstream: tuple[FakeAnthropicUpstream, str]) -> None:
    fake, base = upstream
    body = {**BODY, "system": [{"type": "text", "text": "be brief"}], "stream": True,
            "temperature": 0.2, "thinking": {"type": "adaptive"},
            "messages": [*_MSG, {"role": "assistant", "content": [
                {"type": "tool_use", "id": "toolu_01-x_Y", "name": "f", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01-x_Y",
                                              "content": [{"type": "text", "text": "ok"}]}]},
                {"role": "assistant", "content": ""}]}  # empty final assistant = prefill
    headers = {"authorization": "Bearer k", "anthropic-version": "2026-10-21"}
    async with aiohttp.ClientSession(headers=headers) as s, s.post(
            f"{base}/v1/messages", json=body) as r:
        assert r.status == 200, await r.text()


def test_builders_shapes() -> None:
    think = _frames(thinking_stream(["a", "b"], "sig", ["c"]))
    check_anthropic_stream(think)
    deltas = [(d["index"], d["delta"]["type"]) for n, d in think if n == "content_block_delta"]
    assert deltas == [(0, "thinking_delta"), (0, "thinking_delta"), (0, "signature_delta"),
                      (1, "text_delta")]
    assert think[1][1]["content_block"] == {"type": "thinking", "thinking": "", "signature": ""}
    calls = [("toolu_1", "f", ["", '{"x"', ":1}"]), ("toolu_2", "g", ['{"y":2}'])]
    tools = _frames(tool_use_stream(calls, text_before="hm", usage=(1, 2, 3, 4),
                                    full_delta_usage=True))
    check_anthropic_stream(tools)
    args: dict[int, str] = {}
    for n, d in tools:
        if n == "content_block_delta" and d["delta"]["type"] == "input_json_delta":
            args[d["index"]] = args.get(d["index"], "") + d["delta"]["partial_json"]
    assert {i: json.loads(a) for i, a in args.items()} == {1: {"x": 1}, 2: {"y": 2}}
    assert tools[-2][1]["delta"]["stop_reason"] == "tool_use"
    assert tools[-2][1]["usage"]["cache_creation_input_tokens"] == 4
    cut = _frames(text_stream(["x", "y"])[:-3] + [error_event()])
    check_anthropic_stream(cut, complete=False)
    assert cut[-1][1]["error"] == {"type": "overloaded_error", "message": "Overloaded"}
    body = message([{"type": "text", "text": "t"}], "max_tokens", (1, 2, 3, 4))
    assert body["type"] == "message" and body["stop_reason"] == "max_tokens"
    assert body["usage"]["cache_read_input_tokens"] == 3
    assert error_body("api_error", "x", "req_1")["request_id"] == "req_1"


FIXTURE_FILES = sorted(p.name for p in (FIXTURES / "anthropic").glob("*.sse"))
INCOMPLETE = {"error_midstream.sse", "truncated.sse"}


def test_all_fixtures_listed() -> None:
    readme = (FIXTURES / "anthropic" / "README.md").read_text()
    assert len(FIXTURE_FILES) == 9 and all(f"`{name}`" in readme for name in FIXTURE_FILES)


@pytest.mark.parametrize("name", FIXTURE_FILES)
def test_fixture_follows_the_grammar(name: str) -> None:
    raw = (FIXTURES / "anthropic" / name).read_bytes()
    if name == "truncated.sse":
        assert not raw.endswith(b"\n\n")
        raw = raw[: raw.rindex(b"\n\n") + 2]  # the complete frames only
        frames = parse_anthropic_sse(raw)
        assert frames[-1][0] == "content_block_delta"
        # what a proxy must do with it: close with an error event
        frames.append(("error", {"type": "error",
                                 "error": {"type": "api_error", "message": "truncated"}}))
    else:
        frames = parse_anthropic_sse(raw)
    if name == "crlf.sse":
        assert raw.count(b"\r\n") == raw.count(b"\n")
    check_anthropic_stream(frames, complete=name not in INCOMPLETE)

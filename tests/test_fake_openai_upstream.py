"""The fake OpenAI upstream used by end-to-end tests behaves as advertised."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.fakes.openai_upstream import (
    ErrorResponse,
    FakeOpenAIUpstream,
    JSONResponse,
    Stream,
    chat_completion,
    error_body,
    reasoning_stream,
    text_stream,
    tool_calls_stream,
)


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[FakeOpenAIUpstream, str]]:
    fake = FakeOpenAIUpstream()
    base = await fake.start()
    yield fake, base
    await fake.stop()


def _events(body: bytes) -> list[str]:
    return [e.removeprefix("data: ") for e in body.decode().split("\n\n") if e]


async def test_streams_text_and_records_request(upstream: tuple[FakeOpenAIUpstream, str]) -> None:
    fake, base = upstream
    assert base.startswith("http://127.0.0.1:") and base.endswith("/v1")
    fake.scenario = Stream(text_stream(["Hel", "lo"], usage=(5, 2, 1)))
    async with aiohttp.ClientSession() as s, s.post(
        f"{base}/chat/completions", json={"model": "m", "stream": True},
        headers={"Authorization": "Bearer k"},
    ) as r:
        assert r.status == 200 and r.content_type == "text/event-stream"
        body = await r.read()
    events = _events(body)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert len({(c["id"], c["created"], c["model"]) for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks[:-1]) == "Hello"
    assert all(c["usage"] is None for c in chunks[:-1])
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["total_tokens"] == 7
    assert chunks[-1]["usage"]["prompt_tokens_details"]["cached_tokens"] == 1
    assert fake.requests == [{"path": "/v1/chat/completions",
                              "headers": fake.requests[0]["headers"],
                              "body": {"model": "m", "stream": True},
                              "raw": b'{"model": "m", "stream": true}'}]  # the bytes sent
    assert fake.requests[0]["headers"]["authorization"] == "Bearer k"


async def test_models_and_scenario_list(upstream: tuple[FakeOpenAIUpstream, str]) -> None:
    fake, base = upstream
    fake.scenario = [
        ErrorResponse(429, error_body("slow down", "requests", code="rate_limit_exceeded"),
                      headers={"retry-after": "2"}),
        ErrorResponse(503, b"overloaded"),
        JSONResponse(chat_completion("done")),
    ]
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{base}/models") as r:
            assert (await r.json())["data"][0]["object"] == "model"
        async with s.post(f"{base}/chat/completions", json={}) as r:
            assert r.status == 429 and r.headers["retry-after"] == "2"
            assert (await r.json())["error"]["code"] == "rate_limit_exceeded"
        async with s.post(f"{base}/chat/completions", json={}) as r:
            assert r.status == 503 and await r.read() == b"overloaded"
        for _ in range(2):  # the last scenario repeats
            async with s.post(f"{base}/chat/completions", json={}) as r:
                data = await r.json()
                assert data["choices"][0]["message"]["content"] == "done"
    assert [q["path"] for q in fake.requests] == ["/v1/models"] + ["/v1/chat/completions"] * 4


async def test_cut_connection_is_a_payload_error(upstream: tuple[FakeOpenAIUpstream, str]) -> None:
    fake, base = upstream
    chunks = text_stream(["a", "b", "c"])
    fake.scenario = Stream(chunks, cut_after=2)
    got = b""
    async with aiohttp.ClientSession() as s, s.post(f"{base}/chat/completions", json={}) as r:
        with pytest.raises(aiohttp.ClientPayloadError):
            async for data in r.content.iter_any():
                got += data
    assert got == b"".join(chunks[:2])


async def test_hang_then_client_disconnect_sets_client_gone(
    upstream: tuple[FakeOpenAIUpstream, str],
) -> None:
    fake, base = upstream
    fake.scenario = Stream(text_stream(["x"], with_done=False), hang_after=True)
    async with aiohttp.ClientSession() as s:
        r = await s.post(f"{base}/chat/completions", json={})
        assert (await r.content.readuntil(b"\n\n")).startswith(b"data: ")
        await asyncio.sleep(0.05)
        assert not fake.client_gone.is_set()
        r.close()  # drop the connection mid-stream
        await asyncio.wait_for(fake.client_gone.wait(), 2)
    assert fake.disconnects == 1


async def test_disconnect_during_delay_is_counted(upstream: tuple[FakeOpenAIUpstream, str]) -> None:
    fake, base = upstream
    fake.scenario = Stream(text_stream(["a"] * 50), delay=0.05)
    async with aiohttp.ClientSession() as s:
        r = await s.post(f"{base}/chat/completions", json={})
        await r.content.readuntil(b"\n\n")
        r.close()
        await asyncio.wait_for(fake.client_gone.wait(), 2)
    assert fake.disconnects == 1


def test_builders_shapes() -> None:
    calls = [("call_a", "f", ['{"x"', ':1}']), ("call_b", "g", ['{"y"', ":2", "}"])]
    inter = [json.loads(e) for e in _events(b"".join(tool_calls_stream(calls, interleave=True)))
             if e != "[DONE]"]
    tcs = [c["choices"][0]["delta"]["tool_calls"][0] for c in inter
           if c["choices"] and "tool_calls" in c["choices"][0]["delta"]]
    assert [t["index"] for t in tcs] == [0, 1, 0, 1, 0, 1, 1]
    assert [("id" in t, "name" in t["function"]) for t in tcs[:3]] == [
        (True, True), (True, True), (False, False)]
    assert set(tcs[2]) == {"index", "function"}
    args: dict[int, str] = {}
    for t in tcs:
        args[t["index"]] = args.get(t["index"], "") + t["function"]["arguments"]
    assert args == {0: '{"x":1}', 1: '{"y":2}'}
    assert inter[-2]["choices"][0]["finish_reason"] == "tool_calls"
    seq = tool_calls_stream(calls, interleave=False, text_before="ok", usage=None)
    seq_tcs = [json.loads(e)["choices"][0]["delta"].get("tool_calls", [{}])[0].get("index")
               for e in _events(b"".join(seq)) if e != "[DONE]"]
    assert [i for i in seq_tcs if i is not None] == [0, 0, 0, 1, 1, 1, 1]
    assert all("usage" not in json.loads(e) for e in _events(b"".join(seq)) if e != "[DONE]")
    vllm = b"".join(reasoning_stream(["th"], ["hi"], field="reasoning"))
    assert b'"delta":{"reasoning":"th"}' in vllm

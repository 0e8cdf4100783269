"""``ProxyClient`` against the real proxy app on a real port, in both dialects, through
translations and relays alike; plus the sans-I/O pieces it is built from."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.client import Completion, ProxyClient, ProxyClientError
from proxy.client.wire import AnthropicStreamReader, OpenAIStreamReader, error_from_body
from proxy.sse import SSEDecoder
from tests.client.conftest import Target, start_target
from tests.fakes import anthropic_upstream as fake_anthropic
from tests.fakes import openai_upstream as fake_openai
from tests.fakes.anthropic_upstream import FakeAnthropicUpstream
from tests.fakes.openai_upstream import FakeOpenAIUpstream, Stream


def client_for(target: Target, **kwargs: Any) -> ProxyClient:
    return ProxyClient(target.url, dialect=target.dialect, **kwargs)


def last_user_text(fake: FakeOpenAIUpstream) -> str:
    content = fake.requests[-1]["body"]["messages"][-1]["content"]
    if isinstance(content, list):  # a translation may send text blocks
        return "".join(block["text"] for block in content)
    return str(content)


async def test_health(target: Target) -> None:
    async with client_for(target) as client:
        health = await client.health()
    assert health["status"] == "ok"
    assert health["upstream_dialect"] == target.upstream_dialect


async def test_models(target: Target) -> None:
    async with client_for(target) as client:
        assert await client.models() == [target.listed_model]


async def test_stream(target: Target) -> None:
    # Spaced out, so that the proxy cannot send the two pieces as one.
    target.fake.scenario = Stream(
        fake_openai.text_stream(["Hi", "!"]) if target.upstream_dialect == "openai"
        else fake_anthropic.text_stream(["Hi", "!"]), delay=0.02)
    pieces: list[str] = []
    async with client_for(target) as client:
        stream = client.stream("hi there", model="m", max_tokens=50, system="Be brief.")
        assert stream.completion is None
        async for piece in stream:
            pieces.append(piece)
    assert pieces == ["Hi", "!"]
    done = stream.completion
    assert isinstance(done, Completion)
    assert done.text == "Hi!" and done.stop_reason in ("end_turn", "stop")
    assert done.output_tokens == (7 if target.upstream_dialect == "openai" else 12)
    assert done.input_tokens is not None and done.input_tokens > 0
    assert done.ttfb_s is not None and 0 <= done.ttfb_s <= done.total_s
    assert last_user_text(target.fake) == "hi there"
    assert "Be brief." in str(target.fake.requests[-1]["body"])


async def test_complete(target: Target) -> None:
    if target.relay:  # a relay passes stream: false up, so the upstream answers JSON
        target.fake.scenario = target.answer_json("Hello!")
    else:
        target.fake.scenario = Stream(
            fake_openai.text_stream(["Hel", "lo!"]) if target.upstream_dialect == "openai"
            else fake_anthropic.text_stream(["Hel", "lo!"]))
    async with client_for(target) as client:
        done = await client.complete("hi", model="m", max_tokens=20)
    assert done.text == "Hello!"
    assert done.stop_reason in ("end_turn", "stop")
    assert done.output_tokens == (7 if target.upstream_dialect == "openai" else 12)
    assert done.ttfb_s is not None and done.total_s >= done.ttfb_s


@pytest.mark.parametrize("streaming", [True, False], ids=["stream", "complete"])
async def test_an_upstream_429_is_a_client_error(target: Target, streaming: bool) -> None:
    target.fake.scenario = target.error(429, "rate_limit_error", "slow down")
    async with client_for(target) as client:
        with pytest.raises(ProxyClientError) as caught:
            if streaming:
                async for _ in client.stream("hi", model="m"):
                    pass
            else:
                await client.complete("hi", model="m")
    assert caught.value.status == 429
    assert caught.value.type == "rate_limit_error"
    assert "slow down" in caught.value.message
    assert str(caught.value).startswith("429 rate_limit_error: ")


async def test_an_error_inside_the_stream(target: Target) -> None:
    if target.upstream_dialect == "openai":
        chunks = fake_openai.text_stream(["par", "tial"])[:3] + [
            fake_openai.error_chunk("upstream fell over")]
    else:
        chunks = fake_anthropic.text_stream(["par", "tial"])[:-3] + [
            fake_anthropic.error_event("overloaded_error", "upstream fell over")]
    target.fake.scenario = Stream(chunks)
    got: list[str] = []
    async with client_for(target) as client:
        stream = client.stream("hi", model="m")
        with pytest.raises(ProxyClientError) as caught:
            async for piece in stream:
                got.append(piece)
    assert "".join(got) == "partial"
    assert caught.value.status is None and "upstream fell over" in caught.value.message
    assert stream.completion is None


async def test_thinking_is_not_text(target: Target) -> None:
    if target.upstream_dialect == "openai":
        chunks = fake_openai.reasoning_stream(["Let me ", "see."], ["Four."])
    else:
        chunks = fake_anthropic.thinking_stream(["Let me ", "see."], "sig", ["Four."])
    target.fake.scenario = Stream(chunks)
    thoughts: list[str] = []
    async with client_for(target) as client:
        stream = client.stream("2+2?", model="m", on_thinking=thoughts.append)
        text = [piece async for piece in stream]
    assert text == ["Four."]
    assert "".join(thoughts) == "Let me see."
    assert stream.completion is not None and stream.completion.thinking == "Let me see."


@pytest.mark.parametrize("dialect", ["anthropic", "openai"])
async def test_the_api_key_goes_where_the_dialect_puts_it(
        dialect: str, upstream: FakeOpenAIUpstream, anthropic_upstream: FakeAnthropicUpstream,
        start_proxy: Any) -> None:
    target = await start_target(dialect, "openai", upstream, anthropic_upstream, start_proxy,
                                proxy_api_key="sk-proxy-secret")
    async with client_for(target, api_key="sk-proxy-secret") as client:
        assert await client.models() == ["upstream-model"]
        assert "".join([p async for p in client.stream("hi", model="m")]) == "Hi!"
    async with client_for(target, api_key="wrong") as client:
        with pytest.raises(ProxyClientError) as caught:
            await client.complete("hi", model="m")
    assert caught.value.status == 401


async def test_a_stream_without_its_end_marker_is_an_error(
        anthropic_upstream: FakeAnthropicUpstream) -> None:
    # The fake Anthropic upstream speaks /v1/messages itself: cut its stream short.
    anthropic_upstream.scenario = Stream(fake_anthropic.text_stream(["a", "b"])[:-2])
    url = anthropic_upstream.base_url  # type: ignore[attr-defined]
    async with ProxyClient(url, api_key="k") as client:
        with pytest.raises(ProxyClientError) as caught:
            async for _ in client.stream("hi", model="m"):
                pass
    assert caught.value.type == "incomplete_stream"


async def test_an_unreachable_proxy(start_proxy: Any) -> None:
    url = await start_proxy()
    port = int(url.rsplit(":", 1)[1])
    async with ProxyClient(f"http://127.0.0.1:{port}/v1") as client:
        assert (await client.health())["status"] == "ok"  # a trailing /v1 is fine
    async with ProxyClient("http://127.0.0.1:9", timeout=5) as client:
        with pytest.raises(ProxyClientError) as caught:
            await client.health()
    assert caught.value.status is None and caught.value.type == "connection_error"
    assert "cannot reach the proxy at http://127.0.0.1:9" in caught.value.message


def test_unknown_dialect() -> None:
    with pytest.raises(ValueError, match="dialect"):
        ProxyClient(dialect="gemini")


# --- the sans-I/O pieces -----------------------------------------------------------------


@pytest.mark.parametrize(("raw", "kind", "message"), [
    (b'{"type":"error","error":{"type":"overloaded_error","message":"busy"}}',
     "overloaded_error", "busy"),
    (b'{"error":{"message":"no","type":"invalid_request_error","param":null,"code":null}}',
     "invalid_request_error", "no"),
    (b'{"error":{"message":"x","type":null,"code":"rate_limit_exceeded"}}',
     "rate_limit_exceeded", "x"),
    (b"<html>Bad Gateway</html>", "http_error", "<html>Bad Gateway</html>"),
    (b"", "http_error", "(empty body)"),
])
def test_error_bodies(raw: bytes, kind: str, message: str) -> None:
    error = error_from_body(502, raw)
    assert (error.status, error.type, error.message) == (502, kind, message)


def test_stream_readers_byte_by_byte() -> None:
    cases: list[tuple[Any, list[bytes]]] = [
        (AnthropicStreamReader("m"), fake_anthropic.text_stream(["a", "é\u2028"])),
        (OpenAIStreamReader("m"), fake_openai.text_stream(["a", "é\u2028"])),
    ]
    for reader, chunks in cases:
        decoder, text = SSEDecoder(), []
        for byte in b"".join(chunks):
            for event in decoder.feed(bytes([byte])):
                text += [piece for kind, piece in reader.feed(event) if kind == "text"]
        assert "".join(text) == "aé\u2028" and reader.done

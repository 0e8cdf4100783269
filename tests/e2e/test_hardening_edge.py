"""Hostile input at the edge (issue 8): bodies that inflate without bound, bodies that
never finish arriving, upstream frames that never end, and pings that must not land
inside or after an answer that is still being drained by a slow reader."""

from __future__ import annotations

import asyncio
import gzip
import socket
import time
import zlib
from typing import Any

import aiohttp
import pytest

from tests.fakes.openai_upstream import FakeOpenAIUpstream, Stream, sse, text_stream
from tests.support import check_anthropic_stream, parse_anthropic_sse

BODY = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}


async def _post(url: str, data: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.post(
            url + "/v1/messages", data=data, headers=headers) as response:
        return response.status, await response.json()


def _bomb(inflated: int) -> bytes:
    """``inflated`` bytes of zeros, gzipped (about 1000 times smaller)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b"\0" * (1 << 20)
    parts = [compressor.compress(block) for _ in range(inflated >> 20)]
    return b"".join(parts) + compressor.flush()


async def test_a_gzip_body_is_inflated_and_answered(proxy_url: str) -> None:
    import orjson
    status, body = await _post(proxy_url, gzip.compress(orjson.dumps(BODY)),
                               {"content-encoding": "gzip", "content-type": "application/json"})
    assert status == 200 and body["type"] == "message"


async def test_a_gzip_bomb_is_refused_without_stalling_anyone(proxy_url: str) -> None:
    bomb = _bomb(1 << 27)  # 128 MiB of zeros in about 130 KB; the limit is 32 MiB
    assert len(bomb) < 1 << 20
    sent = asyncio.ensure_future(_post(proxy_url, bomb, {"content-encoding": "gzip"}))
    await asyncio.sleep(0.05)
    async with aiohttp.ClientSession() as session:
        started = time.perf_counter()
        async with session.get(proxy_url + "/health") as response:
            assert response.status == 200
        health_wait = time.perf_counter() - started
    status, body = await sent
    assert status == 413 and body["error"]["type"] == "request_too_large"
    assert "MAX_BODY_BYTES" in body["error"]["message"]
    # Not a timing assertion on the proxy's speed: /health must merely not wait for the
    # whole gigabyte to be inflated (which takes several seconds on the event loop).
    assert health_wait < 2.0


def test_gzip_members_all_count_and_the_bound_holds_across_them() -> None:
    from proxy.edge.body import inflate
    from proxy.errors import RequestTooLarge
    two = gzip.compress(b'{"a":') + gzip.compress(b' 1}')
    assert inflate(two, "gzip", 100) == b'{"a": 1}'
    with pytest.raises(RequestTooLarge):
        inflate(gzip.compress(b"x" * 60) + gzip.compress(b"y" * 60), "gzip", 100)
    assert inflate(zlib.compress(b"plain"), "deflate", 100) == b"plain"
    raw = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    assert inflate(raw.compress(b"headerless") + raw.flush(), "deflate", 100) == b"headerless"


async def test_an_unknown_body_encoding_is_a_415(proxy_url: str) -> None:
    status, body = await _post(proxy_url, b"xx", {"content-encoding": "br"})
    assert status == 415 and "Content-Encoding" in body["error"]["message"]


async def test_a_broken_gzip_body_is_a_400(proxy_url: str) -> None:
    status, body = await _post(proxy_url, b"\x1f\x8bnot gzip at all",
                               {"content-encoding": "gzip"})
    assert status == 400 and body["error"]["type"] == "invalid_request_error"


async def test_auth_is_answered_before_a_large_body_is_read(
        upstream: FakeOpenAIUpstream, start_proxy: Any) -> None:
    url = await start_proxy(upstream_url=upstream.base_url,  # type: ignore[attr-defined]
                            proxy_api_key="proxy-key-123456")
    status, body = await _post(url, _bomb(1 << 27), {"content-encoding": "gzip"})
    assert status == 401 and body["error"]["type"] == "authentication_error"


async def test_a_body_that_never_finishes_arriving_is_a_408(
        upstream: FakeOpenAIUpstream, start_proxy: Any) -> None:
    url = await start_proxy(upstream_url=upstream.base_url,  # type: ignore[attr-defined]
                            body_read_timeout=0.3)
    port = int(url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 1000\r\n\r\n{\"model\":")
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
    assert head.startswith(b"HTTP/1.1 408")
    writer.close()


async def test_an_upstream_frame_without_end_fails_the_stream_cleanly(
        upstream: FakeOpenAIUpstream, start_proxy: Any) -> None:
    url = await start_proxy(upstream_url=upstream.base_url,  # type: ignore[attr-defined]
                            max_frame_bytes=64 * 1024)
    first = text_stream(["hello"])[:2]  # the role chunk and one text chunk
    endless = [b'data: {"choices":[{"delta":{"content":"' + b"x" * 8192 for _ in range(40)]
    upstream.scenario = Stream(first + endless, delay=0.02, hang_after=True)
    async with aiohttp.ClientSession() as session, session.post(
            url + "/v1/messages", json={**BODY, "stream": True}) as response:
        assert response.status == 200
        raw = await asyncio.wait_for(response.read(), timeout=5)
    frames = parse_anthropic_sse(raw)
    check_anthropic_stream(frames, complete=False)
    assert "MAX_FRAME_BYTES" in frames[-1][1]["error"]["message"]


async def test_an_upstream_frame_too_large_before_any_content_is_a_502(
        upstream: FakeOpenAIUpstream, start_proxy: Any) -> None:
    url = await start_proxy(upstream_url=upstream.base_url,  # type: ignore[attr-defined]
                            max_frame_bytes=64 * 1024)
    upstream.scenario = Stream([b"data: " + b"y" * 8192 for _ in range(20)], hang_after=True)
    status, body = await _post(url, __import__("orjson").dumps(BODY), {})
    assert status == 502 and "MAX_FRAME_BYTES" in body["error"]["message"]


def _big_answer() -> list[bytes]:
    # About 16 MB of text, all sent at once: more than the kernel's loopback buffers
    # hold, so the proxy's writes must wait for the (slow) reader to drain them.
    pieces = ["word " * 2000] * 1600
    return [b"".join(text_stream(pieces))]


async def test_no_ping_lands_while_a_slow_reader_drains_the_answer(
        upstream: FakeOpenAIUpstream, start_proxy: Any) -> None:
    url = await start_proxy(upstream_url=upstream.base_url,  # type: ignore[attr-defined]
                            ping_interval=0.05)
    upstream.scenario = Stream(_big_answer())
    port = int(url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port))
    body = __import__("orjson").dumps({**BODY, "stream": True})
    sock.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    await asyncio.sleep(0.6)  # the reader is slow: the proxy's write must wait to drain
    received = bytearray()
    loop = asyncio.get_running_loop()
    while chunk := await loop.run_in_executor(None, sock.recv, 1 << 16):
        received += chunk
    sock.close()
    head, _, chunked = bytes(received).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    frames = parse_anthropic_sse(_unchunk(chunked))
    check_anthropic_stream(frames)
    names = [name for name, _ in frames]
    assert names[-1] == "message_stop"
    assert "ping" not in names  # the upstream was never silent: only the reader was slow


def _unchunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2:]
    return bytes(out)


def test_sse_frames_used_by_the_tests_are_well_formed() -> None:
    assert sse({"a": 1}).endswith(b"\n\n")

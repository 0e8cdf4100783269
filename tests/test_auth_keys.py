"""The client's key as the auth middleware reads it: any bytes a client puts in
``x-api-key`` or ``Authorization`` give the right answer (through, or a 401), never a
crash. aiohttp hands header bytes that are not UTF-8 on as lone surrogates, which once
broke the constant-time compare (a 500 the SDKs retried).

The app runs on a real port (in a thread of its own, so Hypothesis can drive it with
plain sockets), and every request goes through aiohttp's own header parser."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from dataclasses import replace

import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

from proxy.app import create_app
from proxy.config import Settings
from tests.dialects.strategies import BOUNDED

PROXY_KEY = "proxy-key-123"
BODY = b'{"model": "m", "messages": [{"role": "user", "content": "hi"}]}'


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    """The proxy with a key of its own and no upstream (count_tokens answers locally)."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    runner = web.AppRunner(create_app(replace(Settings(), proxy_api_key=PROXY_KEY)),
                           access_log=None)

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", 0).start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(10)
    yield runner.addresses[0][1]
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def status(port: int, header: bytes) -> tuple[int, bytes]:
    """POST count_tokens with one raw header line; the status and the whole answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"POST /v1/messages/count_tokens HTTP/1.1\r\nHost: x\r\n" + header
                     + b"\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                     b"Connection: close\r\n\r\n" % len(BODY) + BODY)
        answer = b""
        while piece := sock.recv(65536):
            answer += piece
    return int(answer.split(b" ", 2)[1]), answer


@pytest.mark.parametrize("header", [
    b"x-api-key: k\xff\xfe\xe9",
    b"Authorization: Bearer \xc3\x28\xff",
    b"x-api-key: " + PROXY_KEY.encode() + b"\xff",
    "x-api-key: prøxy-key".encode(),
    b"x-api-key: proxy key",
])
def test_a_key_that_is_not_printable_ascii_is_a_401(port: int, header: bytes) -> None:
    code, answer = status(port, header)
    assert code == 401, answer[:300]
    assert b"x-should-retry: false" in answer.lower()


@pytest.mark.parametrize("header", [
    b"x-api-key: " + PROXY_KEY.encode(),
    b"Authorization: Bearer " + PROXY_KEY.encode(),
    b"authorization: bearer  " + PROXY_KEY.encode() + b" ",
])
def test_the_right_key_passes(port: int, header: bytes) -> None:
    code, answer = status(port, header)
    assert code == 200, answer[:300]


# What may stand in a header value: any byte but CR, LF and NUL (aiohttp's parser refuses
# other control bytes itself, with a 400 before the app is asked).
header_values = st.binary(max_size=40).map(
    lambda b: bytes(c for c in b if c not in b"\r\n\x00").strip(b" \t"))


@BOUNDED
@given(header_values, st.sampled_from([b"x-api-key: ", b"Authorization: Bearer ",
                                       b"Authorization: "]))
def test_any_key_bytes_pass_only_when_they_are_the_key(port: int, value: bytes,
                                                         name: bytes) -> None:
    code, answer = status(port, name + value)
    right = value == PROXY_KEY.encode() and name != b"Authorization: "
    if right:
        assert code == 200, answer[:300]
    else:
        assert code in (400, 401), answer[:300]  # 400: the header parser's own refusal

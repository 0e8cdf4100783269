#!/usr/bin/env python3
"""The benchmark's fast fake upstreams, one process each: ``bench_upstreams.py PORT DIALECT``.

``openai``: ``POST /v1/chat/completions`` answers a precomputed stream of 200 choice chunks
(role chunk, 198 content chunks of a few words, finish chunk), then a usage chunk and
``data: [DONE]``. ``anthropic``: ``POST /v1/messages`` answers a precomputed 200-chunk
Messages stream (message_start, content_block_start, ping, 197 text_delta frames,
content_block_stop, message_delta with usage, message_stop; each ``event: X\\ndata: {json}``).
Each chunk is its own write, as fast as the connection takes them.

Paced streams, for the long-streams scenario: the same paths under ``/paced/N/MS`` (so a
proxy's upstream URL can carry them) answer N text chunks MS milliseconds apart: the
frames before the first text go at once, each text chunk goes MS after the previous one on
a fixed schedule (a slow reader does not slow the clock), the closing frames right after
the last. A 1000 of them cost a timer and a write per chunk each.

A body with ``"stream": false`` gets the whole answer as one JSON object instead (the same
text). Keys are not checked. ``GET /health`` answers ``ok``.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import orjson
from aiohttp import web

HOST = "127.0.0.1"
MODEL = "fake-model"
OPENAI_CONTENT_CHUNKS = 198
ANTHROPIC_TEXT_DELTAS = 197
DEFAULT_TEXTS = {"openai": OPENAI_CONTENT_CHUNKS, "anthropic": ANTHROPIC_TEXT_DELTAS}
PATHS = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages"}
WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "while", "tokens"]
OUTPUT_TOKENS = 600


def texts(count: int) -> list[str]:
    return [" ".join(WORDS[(i + k) % len(WORDS)] for k in range(3)) + " " for i in range(count)]


def expected_text(dialect: str, count: int | None = None) -> str:
    """The whole text of an answer: `count` text chunks (default: the unpaced answer's)."""
    return "".join(texts(DEFAULT_TEXTS[dialect] if count is None else count))


Parts = tuple[list[bytes], list[bytes], list[bytes]]  # head, text chunks, tail


def openai_stream(count: int = OPENAI_CONTENT_CHUNKS) -> Parts:
    """The OpenAI answer as (head, text chunks, tail), one element per write."""
    head = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1741570283}
    head |= {"model": MODEL, "system_fingerprint": "fp_bench"}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return b"data: " + orjson.dumps({**head, "choices": [choice], "usage": None}) + b"\n\n"

    usage = {"prompt_tokens": 8, "completion_tokens": OUTPUT_TOKENS, "total_tokens": 608}
    start = [chunk({"role": "assistant", "content": "", "refusal": None})]
    body = [chunk({"content": text}) for text in texts(count)]
    last = {**head, "choices": [], "usage": usage}
    end = [chunk({}, "stop"), b"data: " + orjson.dumps(last) + b"\n\n", b"data: [DONE]\n\n"]
    return start, body, end


def anthropic_stream(count: int = ANTHROPIC_TEXT_DELTAS) -> Parts:
    """The Anthropic answer as (head, text chunks, tail), per protocols.md 1.5."""

    def frame(e: dict[str, Any]) -> bytes:
        return f"event: {e['type']}\ndata: ".encode() + orjson.dumps(e) + b"\n\n"

    usage: dict[str, Any] = {"input_tokens": 8, "cache_creation_input_tokens": 0}
    usage |= {"cache_read_input_tokens": 0, "output_tokens": 1, "service_tier": "standard"}
    message: dict[str, Any] = {"id": "msg_bench", "type": "message", "role": "assistant"}
    message |= {"model": MODEL, "content": [], "stop_reason": None, "stop_sequence": None}
    message["usage"] = usage
    text_block = {"type": "text", "text": ""}
    block = {"type": "content_block_start", "index": 0, "content_block": text_block}
    start = [frame({"type": "message_start", "message": message}), frame(block)]
    start.append(frame({"type": "ping"}))
    deltas = ({"type": "text_delta", "text": t} for t in texts(count))
    body = [frame({"type": "content_block_delta", "index": 0, "delta": d}) for d in deltas]
    end_turn = {"stop_reason": "end_turn", "stop_sequence": None}
    end = [frame({"type": "content_block_stop", "index": 0})]
    end.append(frame({"type": "message_delta", "delta": end_turn, "usage": {"output_tokens": 600}}))
    end.append(frame({"type": "message_stop"}))
    return start, body, end


def whole_answer(dialect: str) -> bytes:
    """The unpaced answer as one JSON object, for a body with ``"stream": false``."""
    text = expected_text(dialect)
    if dialect == "openai":
        message = {"role": "assistant", "content": text, "refusal": None}
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}
        usage = {"prompt_tokens": 8, "completion_tokens": OUTPUT_TOKENS, "total_tokens": 608}
        doc: dict[str, Any] = {"id": "chatcmpl-bench", "object": "chat.completion"}
        doc |= {"created": 1741570283, "model": MODEL, "choices": [choice], "usage": usage}
        return orjson.dumps(doc)
    usage = {"input_tokens": 8, "output_tokens": OUTPUT_TOKENS}
    doc = {"id": "msg_bench", "type": "message", "role": "assistant", "model": MODEL}
    doc |= {"content": [{"type": "text", "text": text}], "stop_reason": "end_turn"}
    doc |= {"stop_sequence": None, "usage": usage}
    return orjson.dumps(doc)


STREAMS = {"openai": openai_stream, "anthropic": anthropic_stream}


def make_app(dialect: str) -> web.Application:
    """The fake upstream's routes: the plain path, the paced one, and /health."""
    start, body, end = STREAMS[dialect]()
    unpaced, whole = start + body + end, whole_answer(dialect)
    paced_cache: dict[int, Parts] = {}
    sse = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}

    async def stream_wanted(request: web.Request) -> bool:
        try:
            return bool(orjson.loads(await request.read()).get("stream"))
        except (orjson.JSONDecodeError, AttributeError):
            return True

    async def answer(request: web.Request) -> web.StreamResponse:
        if not await stream_wanted(request):
            return web.Response(body=whole, content_type="application/json")
        resp = web.StreamResponse(headers=sse)
        await resp.prepare(request)
        for chunk in unpaced:
            await resp.write(chunk)
        await resp.write_eof()
        return resp

    async def paced(request: web.Request) -> web.StreamResponse:
        count = int(request.match_info["count"])
        delay = int(request.match_info["ms"]) / 1000
        if not 0 < count <= 100_000 or not 0 <= delay <= 60:
            raise web.HTTPBadRequest(text="paced: 0 < N <= 100000 chunks, 0 <= MS <= 60000")
        if not await stream_wanted(request):
            return web.Response(body=whole, content_type="application/json")
        if count not in paced_cache:
            paced_cache[count] = STREAMS[dialect](count)
        head, texts_, tail = paced_cache[count]
        resp = web.StreamResponse(headers=sse)
        await resp.prepare(request)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        for chunk in head:
            await resp.write(chunk)
        for i, chunk in enumerate(texts_, 1):
            await asyncio.sleep(t0 + i * delay - loop.time())  # a fixed schedule, no drift
            await resp.write(chunk)
        for chunk in tail:
            await resp.write(chunk)
        await resp.write_eof()
        return resp

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post(PATHS[dialect], answer)
    app.router.add_post("/paced/{count:\\d+}/{ms:\\d+}" + PATHS[dialect], paced)
    app.router.add_get("/health", health)
    return app


def serve(port: int, dialect: str) -> None:
    loop: asyncio.AbstractEventLoop
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:
        loop = asyncio.new_event_loop()
    web.run_app(
        make_app(dialect),
        host=HOST,
        port=port,
        print=None,
        access_log=None,
        shutdown_timeout=1,
        backlog=4096,
        loop=loop,
    )


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[2] not in ("openai", "anthropic"):
        sys.exit("usage: bench_upstreams.py PORT openai|anthropic")
    serve(int(sys.argv[1]), sys.argv[2])

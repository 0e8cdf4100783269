#!/usr/bin/env python3
"""The benchmark's fast fake upstreams, one process each: ``bench_upstreams.py PORT DIALECT``.

``openai``: ``POST /v1/chat/completions`` answers a precomputed stream of 200 choice chunks
(role chunk, 198 content chunks of a few words, finish chunk), then a usage chunk and
``data: [DONE]``. ``anthropic``: ``POST /v1/messages`` answers a precomputed 200-chunk
Messages stream (message_start, content_block_start, ping, 197 text_delta frames,
content_block_stop, message_delta with usage, message_stop; each ``event: X\\ndata: {json}``).
Each chunk is its own write. Neither checks keys or bodies. ``GET /health`` answers ``ok``.
"""

from __future__ import annotations

import sys
from typing import Any

import orjson
from aiohttp import web

HOST = "127.0.0.1"
MODEL = "fake-model"
OPENAI_CONTENT_CHUNKS = 198
ANTHROPIC_TEXT_DELTAS = 197
WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "while", "tokens"]


def texts(count: int) -> list[str]:
    return [" ".join(WORDS[(i + k) % len(WORDS)] for k in range(3)) + " " for i in range(count)]


def openai_stream() -> list[bytes]:
    """The OpenAI answer, one element per write: 200 choice chunks, usage, [DONE]."""
    head = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1741570283}
    head |= {"model": MODEL, "system_fingerprint": "fp_bench"}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {**head, "choices": [choice], "usage": None}

    usage = {"prompt_tokens": 8, "completion_tokens": 600, "total_tokens": 608}
    events = [chunk({"role": "assistant", "content": "", "refusal": None})]
    events += [chunk({"content": text}) for text in texts(OPENAI_CONTENT_CHUNKS)]
    events += [chunk({}, "stop"), {**head, "choices": [], "usage": usage}]
    return [b"data: " + orjson.dumps(e) + b"\n\n" for e in events] + [b"data: [DONE]\n\n"]


def anthropic_stream() -> list[bytes]:
    """The Anthropic answer, one element per write, per protocols.md 1.5."""
    usage: dict[str, Any] = {"input_tokens": 8, "cache_creation_input_tokens": 0}
    usage |= {"cache_read_input_tokens": 0, "output_tokens": 1, "service_tier": "standard"}
    message: dict[str, Any] = {"id": "msg_bench", "type": "message", "role": "assistant"}
    message |= {"model": MODEL, "content": [], "stop_reason": None, "stop_sequence": None}
    message["usage"] = usage
    text_block = {"type": "text", "text": ""}
    block = {"type": "content_block_start", "index": 0, "content_block": text_block}
    events: list[dict[str, Any]] = [{"type": "message_start", "message": message}, block]
    events.append({"type": "ping"})
    for text in texts(ANTHROPIC_TEXT_DELTAS):
        delta = {"type": "text_delta", "text": text}
        events.append({"type": "content_block_delta", "index": 0, "delta": delta})
    events.append({"type": "content_block_stop", "index": 0})
    end = {"stop_reason": "end_turn", "stop_sequence": None}
    events.append({"type": "message_delta", "delta": end, "usage": {"output_tokens": 600}})
    events.append({"type": "message_stop"})
    return [f"event: {e['type']}\ndata: ".encode() + orjson.dumps(e) + b"\n\n" for e in events]


def serve(port: int, dialect: str) -> None:
    chunks, path = {
        "openai": (openai_stream(), "/v1/chat/completions"),
        "anthropic": (anthropic_stream(), "/v1/messages"),
    }[dialect]
    headers = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}

    async def answer(request: web.Request) -> web.StreamResponse:
        await request.read()
        resp = web.StreamResponse(headers=headers)
        await resp.prepare(request)
        for chunk in chunks:
            await resp.write(chunk)
        await resp.write_eof()
        return resp

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post(path, answer)
    app.router.add_get("/health", health)
    web.run_app(app, host=HOST, port=port, print=None, access_log=None, shutdown_timeout=1)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[2] not in ("openai", "anthropic"):
        sys.exit("usage: bench_upstreams.py PORT openai|anthropic")
    serve(int(sys.argv[1]), sys.argv[2])

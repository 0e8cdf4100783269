#!/usr/bin/env python3
"""The benchmark's fast fake upstreams, one process each: ``bench_upstreams.py PORT DIALECT``.

``openai``: ``POST /v1/chat/completions`` answers a precomputed stream of 200 choice chunks
(role chunk, 198 content chunks of four words, finish chunk), then a usage chunk and
``data: [DONE]``. ``anthropic``: ``POST /v1/messages`` answers a precomputed 200-chunk
Messages stream (message_start, content_block_start, ping, 197 text_delta frames,
content_block_stop, message_delta with usage, message_stop; each ``event: X\\ndata: {json}``).
Every frame is prebuilt as one HTTP/1.1 chunk and goes out with one transport write
(``bench_fake_http.py`` says how, and why not through aiohttp's server).

Paced streams, for the long-streams scenario: the same paths under ``/paced/N/MS`` (so a
proxy's upstream URL can carry them) answer N text chunks MS milliseconds apart: the
frames before the first text go at once, each text chunk goes MS after the previous one on
a fixed schedule (a slow reader does not slow the clock), the closing frames right after
the last. A 1000 of them cost a timer and a write per chunk each.

A body with ``"stream": false`` gets the whole answer as one JSON object instead (the same
text); the body is searched for that, not parsed. Keys are not checked. ``GET /health``
answers ``ok``. ``--no-chunk-yield``: write a stream's chunks back to back (see
bench_fake_http.py).
"""

from __future__ import annotations

import asyncio
import re
import sys
from typing import Any

import orjson
from bench_fake_http import Reply, Stream, chunk, serve, whole

HOST = "127.0.0.1"
MODEL = "fake-model"
OPENAI_CONTENT_CHUNKS = 198
ANTHROPIC_TEXT_DELTAS = 197
DEFAULT_TEXTS = {"openai": OPENAI_CONTENT_CHUNKS, "anthropic": ANTHROPIC_TEXT_DELTAS}
PATHS = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages"}
WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "while", "tokens"]
OUTPUT_TOKENS = 600
NOT_STREAMED = re.compile(rb'"stream"\s*:\s*false')
PACED = re.compile(r"/paced/(\d+)/(\d+)(/.*)")


def texts(count: int) -> list[str]:
    """`count` text pieces of four words each, as a model streams them."""
    return [" ".join(WORDS[(i + k) % len(WORDS)] for k in range(4)) + " " for i in range(count)]


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


class Answers:
    """One dialect's answers, framed once; paced ones framed once per chunk count."""

    def __init__(self, dialect: str) -> None:
        self.dialect, self.path = dialect, PATHS[dialect]
        self.whole = whole("200 OK", "application/json", whole_answer(dialect))
        self.unpaced = self.framed(OPENAI_CONTENT_CHUNKS if dialect == "openai"
                                   else ANTHROPIC_TEXT_DELTAS)
        self.paced: dict[int, Stream] = {}

    def framed(self, count: int, delay: float = 0.0) -> Stream:
        head, texts_, tail = STREAMS[self.dialect](count)
        frames = [chunk(f) for f in head + texts_ + tail]
        return Stream(frames, len(head), len(head) + len(texts_), delay)

    def route(self, method: str, path: str, body: bytes) -> Reply:
        if method == "GET" and path == "/health":
            return whole("200 OK", "text/plain", b"ok")
        if method != "POST":
            return whole("404 Not Found", "text/plain", b"not found")
        if path == self.path:
            return self.whole if NOT_STREAMED.search(body) else self.unpaced
        paced = PACED.fullmatch(path)
        if paced is None or paced.group(3) != self.path:
            return whole("404 Not Found", "text/plain", b"not found")
        count, ms = int(paced.group(1)), int(paced.group(2))
        if not 0 < count <= 100_000 or not 0 <= ms <= 60_000:
            return whole("400 Bad Request", "text/plain",
                         b"paced: 0 < N <= 100000 chunks, 0 <= MS <= 60000")
        if NOT_STREAMED.search(body):
            return self.whole
        key = count * 100_000 + ms
        if key not in self.paced:
            self.paced[key] = self.framed(count, ms / 1000)
        return self.paced[key]


def main(argv: list[str]) -> None:
    args = [a for a in argv if a != "--no-chunk-yield"]
    if len(args) != 2 or args[1] not in PATHS:
        sys.exit("usage: bench_upstreams.py PORT openai|anthropic [--no-chunk-yield]")
    answers = Answers(args[1])
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:
        runner = asyncio.Runner()
    with runner:
        runner.run(serve(HOST, int(args[0]), answers.route,
                         chunk_yield="--no-chunk-yield" not in argv))


if __name__ == "__main__":
    main(sys.argv[1:])

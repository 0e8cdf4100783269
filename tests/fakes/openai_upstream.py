"""A fake OpenAI-compatible upstream: replays scripted responses on 127.0.0.1 and records requests.

Scenarios (``Stream``, ``ErrorResponse``, ``JSONResponse``, or a list of them consumed one per
request, the last one repeating) say what ``POST /v1/chat/completions`` answers. The
``*_stream`` helpers build SSE bodies in the exact OpenAI wire format (protocols.md 2.4).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

CHAT_ID = "chatcmpl-fake0001"
CREATED = 1741570283
MODEL = "gpt-4o-mini"
Usage = tuple[int, int, int]  # (prompt_tokens, completion_tokens, cached_tokens)
DEFAULT_USAGE: Usage = (11, 7, 0)


# --- scenarios ---------------------------------------------------------------------------


@dataclass
class Stream:
    """200 text/event-stream; each chunk written raw, ``delay`` seconds between chunks."""

    chunks: list[bytes]
    delay: float = 0.0
    hang_after: bool = False  # after the chunks: stay open, silent, until the client leaves
    cut_after: int | None = None  # after N chunks: close the socket, no chunked terminator
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class ErrorResponse:
    status: int
    body: dict[str, Any] | bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class JSONResponse:
    body: dict[str, Any]
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


Scenario = Stream | ErrorResponse | JSONResponse


# --- the server --------------------------------------------------------------------------


class FakeOpenAIUpstream:
    def __init__(self, scenario: Scenario | list[Scenario] | None = None) -> None:
        self.requests: list[dict[str, Any]] = []
        self.peers: list[tuple[str, int]] = []  # each request's client address: its connection
        self.events: list[str] = []  # "start" as a request arrives, "end" as its stream ends
        self.disconnects = 0
        self.client_gone = asyncio.Event()
        self.models: list[str] = [MODEL]
        self._scenario: Scenario | list[Scenario] = scenario or Stream(text_stream(["Hi", "!"]))
        self._served = 0  # chat requests answered since `scenario` was last set
        self._stopping = False
        self._runner: web.AppRunner | None = None
        self._app = web.Application()
        self._app.router.add_post("/v1/chat/completions", self._chat)
        self._app.router.add_get("/v1/models", self._models)

    @property
    def scenario(self) -> Scenario | list[Scenario]:
        return self._scenario

    @scenario.setter
    def scenario(self, value: Scenario | list[Scenario]) -> None:
        self._scenario, self._served = value, 0

    @property
    def app(self) -> web.Application:
        return self._app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._runner = web.AppRunner(self._app, handler_cancellation=True, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        bound_host, bound_port = self._runner.addresses[0][:2]
        return f"http://{bound_host}:{bound_port}/v1"

    async def stop(self) -> None:
        self._stopping = True
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- handlers --

    async def _record(self, request: web.Request) -> None:
        raw = await request.read()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        headers = {k.lower(): v for k, v in request.headers.items()}
        peer = request.transport.get_extra_info("peername") if request.transport else None
        self.peers.append(tuple(peer[:2]) if peer else ("", 0))
        self.events.append("start")
        self.requests.append({"path": request.path, "headers": headers, "body": body,
                              "raw": raw})

    def _next_scenario(self) -> Scenario:
        sc = self._scenario
        if isinstance(sc, list):
            sc = sc[min(self._served, len(sc) - 1)]
        self._served += 1
        return sc

    async def _models(self, request: web.Request) -> web.Response:
        await self._record(request)
        data = [{"id": m, "object": "model", "created": 1715367049, "owned_by": "system"}
                for m in self.models]
        return web.json_response({"object": "list", "data": data})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        await self._record(request)
        sc = self._next_scenario()
        if isinstance(sc, Stream):
            return await self._stream(request, sc)
        if isinstance(sc.body, bytes):
            return web.Response(status=sc.status, body=sc.body, headers=sc.headers)
        return web.json_response(sc.body, status=sc.status, headers=sc.headers)

    def _client_left(self) -> None:
        self.disconnects += 1
        self.client_gone.set()

    async def _pause(self, request: web.Request, seconds: float | None) -> bool:
        """Wait ``seconds`` (None: until the client leaves or we stop); True if the client left."""
        loop = asyncio.get_running_loop()
        deadline = None if seconds is None else loop.time() + seconds
        while True:
            transport = request.transport
            if transport is None or transport.is_closing():
                return True
            if self._stopping or (deadline is not None and loop.time() >= deadline):
                return False
            await asyncio.sleep(0.01 if deadline is None else min(0.01, deadline - loop.time()))

    async def _stream(self, request: web.Request, sc: Stream) -> web.StreamResponse:
        headers = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", **sc.headers}
        resp = web.StreamResponse(status=200, headers=headers)
        await resp.prepare(request)
        chunks = sc.chunks if sc.cut_after is None else sc.chunks[: sc.cut_after]
        try:
            for i, chunk in enumerate(chunks):
                if i and sc.delay > 0 and await self._pause(request, sc.delay):
                    self._client_left()
                    return resp
                await resp.write(chunk)
            if sc.cut_after is not None:
                request.protocol.force_close()
                if request.transport is not None:
                    request.transport.close()  # flushes what was written, then FIN mid-body
            elif sc.hang_after and await self._pause(request, None):
                self._client_left()
            self.events.append("end")
        except ConnectionError:
            self._client_left()
        except asyncio.CancelledError:
            if not self._stopping:
                self._client_left()
            raise
        return resp


# --- SSE builders ------------------------------------------------------------------------


def sse(obj: Any) -> bytes:
    """One ``data: <json>\\n\\n`` event (compact JSON, raw UTF-8 like OpenAI)."""
    return b"data: " + json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


def done() -> bytes:
    return b"data: [DONE]\n\n"


def error_chunk(message: str, type: str = "server_error", code: str | None = None) -> bytes:
    return sse({"error": {"message": message, "type": type, "param": None, "code": code}})


def error_body(message: str, type: str = "invalid_request_error",
               param: str | None = None, code: str | None = None) -> dict[str, Any]:
    """An OpenAI error body, for ``ErrorResponse``."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


class _Chunks:
    """Collects chat.completion.chunk events that share id/created/model."""

    def __init__(self, usage: Usage | None, model: str, id: str) -> None:
        self.usage, self.model, self.id = usage, model, id
        self.out: list[bytes] = []

    def add(self, delta: dict[str, Any], finish_reason: str | None = None) -> None:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        self.out.append(sse(self._base([choice])))

    def _base(self, choices: list[Any]) -> dict[str, Any]:
        obj: dict[str, Any] = {"id": self.id, "object": "chat.completion.chunk",
                               "created": CREATED, "model": self.model,
                               "system_fingerprint": "fp_fake", "choices": choices}
        if self.usage is not None:
            obj["usage"] = None
        return obj

    def finish(self, finish_reason: str, with_done: bool, reasoning_tokens: int = 0) -> list[bytes]:
        self.add({}, finish_reason)
        if self.usage is not None:
            prompt, completion, cached = self.usage
            obj = self._base([])
            obj["usage"] = {"prompt_tokens": prompt, "completion_tokens": completion,
                            "total_tokens": prompt + completion,
                            "prompt_tokens_details": {"cached_tokens": cached},
                            "completion_tokens_details": {"reasoning_tokens": reasoning_tokens}}
            self.out.append(sse(obj))
        if with_done:
            self.out.append(done())
        return self.out


_FIRST = {"role": "assistant", "content": "", "refusal": None}


def text_stream(text_pieces: Sequence[str], finish_reason: str = "stop",
                usage: Usage | None = DEFAULT_USAGE, *, model: str = MODEL,
                id: str = CHAT_ID, with_done: bool = True) -> list[bytes]:
    """Role chunk, one chunk per piece, finish chunk, [usage chunk], [DONE]."""
    c = _Chunks(usage, model, id)
    c.add(dict(_FIRST))
    for piece in text_pieces:
        c.add({"content": piece})
    return c.finish(finish_reason, with_done)


def reasoning_stream(reasoning_pieces: Sequence[str], text_pieces: Sequence[str],
                     field: Literal["reasoning_content", "reasoning"] = "reasoning_content",
                     finish_reason: str = "stop", usage: Usage | None = DEFAULT_USAGE, *,
                     model: str = MODEL, id: str = CHAT_ID, with_done: bool = True) -> list[bytes]:
    """Reasoning deltas then text deltas. ``reasoning_content`` is DeepSeek style (with
    explicit nulls for the other field); ``reasoning`` is vLLM/OpenRouter style."""
    c = _Chunks(usage, model, id)
    c.add(dict(_FIRST))
    deepseek = field == "reasoning_content"
    for piece in reasoning_pieces:
        c.add({"content": None, field: piece} if deepseek else {field: piece})
    for piece in text_pieces:
        c.add({"content": piece, field: None} if deepseek else {"content": piece})
    return c.finish(finish_reason, with_done, reasoning_tokens=len(reasoning_pieces))


ToolCall = tuple[str, str, list[str]]  # (id, name, argument fragments)


def tool_calls_stream(calls: Sequence[ToolCall], interleave: bool = False,
                      text_before: str | None = None, finish_reason: str = "tool_calls",
                      usage: Usage | None = DEFAULT_USAGE, *, args_in_first: bool = False,
                      model: str = MODEL, id: str = CHAT_ID, with_done: bool = True) -> list[bytes]:
    """Tool calls, one chunk per fragment. Each call starts with a header fragment
    (index, id, type, function.name, arguments "" — or its first argument fragment when
    ``args_in_first``); later fragments carry only index and function.arguments.
    ``interleave`` alternates calls round-robin (0, 1, 0, 1, ...), else call after call."""
    per_call: list[list[dict[str, Any]]] = []
    for index, (call_id, name, fragments) in enumerate(calls):
        rest = list(fragments)
        first_args = rest.pop(0) if args_in_first and rest else ""
        deltas = [{"index": index, "id": call_id, "type": "function",
                   "function": {"name": name, "arguments": first_args}}]
        deltas += [{"index": index, "function": {"arguments": frag}} for frag in rest]
        per_call.append(deltas)
    if interleave:
        longest = max((len(d) for d in per_call), default=0)
        order = [d[i] for i in range(longest) for d in per_call if i < len(d)]
    else:
        order = [delta for deltas in per_call for delta in deltas]
    c = _Chunks(usage, model, id)
    c.add(dict(_FIRST))
    if text_before:
        c.add({"content": text_before})
    for delta in order:
        c.add({"tool_calls": [delta]})
    return c.finish(finish_reason, with_done)


def chat_completion(content: str | None = "Hello!", finish_reason: str = "stop",
                    usage: Usage = DEFAULT_USAGE, *,
                    tool_calls: Sequence[tuple[str, str, str]] = (),
                    reasoning_content: str | None = None, model: str = MODEL,
                    id: str = CHAT_ID) -> dict[str, Any]:
    """A non-streaming ``chat.completion`` body (tool_calls: (id, name, arguments JSON))."""
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
    if reasoning_content is not None:
        message["reasoning_content"] = reasoning_content
    if tool_calls:
        message["tool_calls"] = [
            {"id": i, "type": "function", "function": {"name": n, "arguments": a}}
            for i, n, a in tool_calls
        ]
    prompt, completion, cached = usage
    return {"id": id, "object": "chat.completion", "created": CREATED, "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": finish_reason}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                      "total_tokens": prompt + completion,
                      "prompt_tokens_details": {"cached_tokens": cached}}}

"""A fake Anthropic Messages upstream: replays scripted responses on 127.0.0.1, records requests.

Same vocabulary as the OpenAI fake: ``Stream``, ``ErrorResponse``, ``JSONResponse`` (or a list
of them, one per ``POST /v1/messages``, the last one repeating). The ``*_stream`` builders
make SSE bodies in the exact Anthropic wire format (protocols.md 1.5); ``message`` and
``error_body`` make JSON bodies (1.4, 1.6). With ``strict`` (the default) requests are
checked the way the real API checks them (1.1-1.3) before any scenario is consumed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp import web

from tests.fakes.openai_upstream import ErrorResponse, FakeOpenAIUpstream, JSONResponse, Stream

__all__ = [  # the scenario classes are the OpenAI fake's: one vocabulary for all tests
    "DEFAULT_USAGE", "MODEL", "MSG_ID", "PING", "ErrorResponse", "FakeAnthropicUpstream",
    "JSONResponse", "Stream", "blocks_stream", "check_request", "error_body", "error_event",
    "frame", "message", "redacted_thinking_block", "text_block", "text_stream",
    "thinking_block", "thinking_stream", "tool_use_block", "tool_use_stream"]

MSG_ID = "msg_01FakeAnthropic0000001"
MODEL = "claude-sonnet-4-5"
Usage = tuple[int, int, int, int]  # (input, output, cache_read_input, cache_creation_input)
DEFAULT_USAGE: Usage = (25, 12, 0, 0)
Scenario = Stream | ErrorResponse | JSONResponse

MESSAGE_FIELDS = frozenset({
    "model", "messages", "max_tokens", "system", "stop_sequences", "temperature", "top_p",
    "top_k", "metadata", "stream", "tools", "tool_choice", "thinking", "output_config",
    "service_tier", "container", "mcp_servers", "context_management"})
_ID = re.compile(r"^[a-zA-Z0-9_-]+$")


# --- the server --------------------------------------------------------------------------


class FakeAnthropicUpstream(FakeOpenAIUpstream):
    """Reuses the OpenAI fake's scenario replay and streaming machinery (``Stream`` delays,
    ``hang_after``, ``cut_after``, ``disconnects``, ``client_gone``); only the routes, the
    request checks and the wire formats differ.

    ``requests`` entries: ``{"path", "query", "headers" (lowercase keys), "body"}``; rejected
    requests are recorded too. ``start()`` returns the base URL *without* ``/v1``."""

    def __init__(self, scenario: Scenario | list[Scenario] | None = None, *,
                 strict: bool = True) -> None:
        super().__init__(scenario or Stream(text_stream(["Hi", "!"])))
        self.strict = strict
        self.models = [MODEL]
        self._app = web.Application()
        self._app.router.add_post("/v1/messages", self._messages)
        self._app.router.add_post("/v1/messages/count_tokens", self._count_tokens)
        self._app.router.add_get("/v1/models", self._models)
        self._app.router.add_get("/v1/models/{model_id}", self._model)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        return (await super().start(host, port)).removesuffix("/v1")

    # -- handlers --

    async def _record(self, request: web.Request) -> None:
        await super()._record(request)
        self.requests[-1]["query"] = request.query_string

    def _rejection(self, endpoint: str) -> web.Response | None:
        if not self.strict:
            return None
        last = self.requests[-1]
        err = check_request(last["headers"], last["body"], endpoint=endpoint)
        if err is None:
            return None
        assert isinstance(err.body, dict)
        return web.json_response(err.body, status=err.status)

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        await self._record(request)
        if (rejected := self._rejection("messages")) is not None:
            return rejected
        sc = self._next_scenario()
        if isinstance(sc, Stream):
            return await self._stream(request, sc)
        if isinstance(sc.body, bytes):
            return web.Response(status=sc.status, body=sc.body, headers=sc.headers)
        return web.json_response(sc.body, status=sc.status, headers=sc.headers)

    async def _count_tokens(self, request: web.Request) -> web.Response:
        await self._record(request)
        if (rejected := self._rejection("count_tokens")) is not None:
            return rejected
        return web.json_response({"input_tokens": len(await request.read()) // 4})

    def _model_info(self, model_id: str) -> dict[str, Any]:
        return {"type": "model", "id": model_id, "display_name": model_id,
                "created_at": "2025-09-29T00:00:00Z", "lifecycle": "active",
                "max_input_tokens": 200000, "max_tokens": 64000}

    async def _models(self, request: web.Request) -> web.Response:
        await self._record(request)
        if (rejected := self._rejection("models")) is not None:
            return rejected
        data = [self._model_info(m) for m in self.models]
        return web.json_response({"data": data, "has_more": False,
                                  "first_id": self.models[0] if self.models else None,
                                  "last_id": self.models[-1] if self.models else None})

    async def _model(self, request: web.Request) -> web.Response:
        await self._record(request)
        if (rejected := self._rejection("models")) is not None:
            return rejected
        model_id = request.match_info["model_id"]
        if model_id not in self.models:
            return web.json_response(error_body("not_found_error", f"model: {model_id}"),
                                     status=404)
        return web.json_response(self._model_info(model_id))


# --- request checks (what the real API rejects) ------------------------------------------


def _bad(message: str, status: int = 400,
         type: str = "invalid_request_error") -> ErrorResponse:
    return ErrorResponse(status, error_body(type, message))


def check_request(headers: Mapping[str, str], body: Any, *,
                  endpoint: str = "messages") -> ErrorResponse | None:
    """The error the real API would answer for this request, or None. ``headers`` keys are
    lowercase; ``endpoint`` is ``messages``, ``count_tokens`` or ``models`` (headers only)."""
    if "x-api-key" not in headers and "authorization" not in headers:
        return _bad("x-api-key header is required", 401, "authentication_error")
    if "anthropic-version" not in headers:
        return _bad("anthropic-version: header is required")
    if endpoint == "models":
        return None
    if not isinstance(body, dict):
        return _bad("Request body must be a JSON object")
    if endpoint == "messages":
        for name in body:
            if name not in MESSAGE_FIELDS:
                return _bad(f"{name}: Extra inputs are not permitted")
    required = ("model", "messages", "max_tokens") if endpoint == "messages" else (
        "model", "messages")
    for name in required:
        if name not in body:
            return _bad(f"{name}: Field required")
    return _check_system(body.get("system")) or _check_messages(body["messages"])


def _check_system(system: Any) -> ErrorResponse | None:
    if isinstance(system, list) and any(
            isinstance(b, dict) and b.get("type") == "text" and b.get("text") == ""
            for b in system):
        return _bad("system: text content blocks must be non-empty")
    return None


def _check_messages(messages: Any) -> ErrorResponse | None:
    if not isinstance(messages, list):
        return _bad("messages: Input should be a valid list")
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            return _bad(f"messages.{i}: Input should be a valid dictionary")
        content = msg.get("content")
        final_assistant = i == len(messages) - 1 and msg.get("role") == "assistant"
        if content in ("", []) and not final_assistant:
            return _bad(f"messages.{i}: all messages must have non-empty content except for "
                        "the optional final assistant message")
        if not isinstance(content, list):
            continue
        for j, block in enumerate(content):
            if (err := _check_block(block, f"messages.{i}.content.{j}")) is not None:
                return err
    return None


def _check_block(block: Any, where: str) -> ErrorResponse | None:
    if not isinstance(block, dict):
        return _bad(f"{where}: Input should be a valid dictionary")
    kind = block.get("type")
    if kind == "text" and block.get("text") == "":
        return _bad("messages: text content blocks must be non-empty")
    pattern = f"String should match pattern '{_ID.pattern}'"
    if kind == "tool_use" and not _ID.match(str(block.get("id", ""))):
        return _bad(f"{where}.tool_use.id: {pattern}")
    if kind == "tool_result":
        if not _ID.match(str(block.get("tool_use_id", ""))):
            return _bad(f"{where}.tool_result.tool_use_id: {pattern}")
        inner = block.get("content")
        if isinstance(inner, list):
            for k, sub in enumerate(inner):
                if (err := _check_block(sub, f"{where}.tool_result.content.{k}")) is not None:
                    return err
    return None


# --- SSE and JSON builders ---------------------------------------------------------------

Block = tuple[dict[str, Any], list[dict[str, Any]]]  # (content_block_start block, deltas)
ToolCall = tuple[str, str, list[str]]  # (id, name, partial_json fragments)


def frame(obj: dict[str, Any]) -> bytes:
    """One ``event: <type>\\ndata: <json>\\n\\n`` frame (compact JSON, raw UTF-8)."""
    data = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    return f"event: {obj['type']}\ndata: {data}\n\n".encode()


PING = b'event: ping\ndata: {"type": "ping"}\n\n'  # sic: the real API's spaced JSON


def error_event(type: str = "overloaded_error", message: str = "Overloaded") -> bytes:
    """The in-stream ``event: error`` frame."""
    return frame({"type": "error", "error": {"type": type, "message": message}})


def error_body(type: str, message: str, request_id: str | None = None) -> dict[str, Any]:
    """An Anthropic error body, for ``ErrorResponse``."""
    body: dict[str, Any] = {"type": "error", "error": {"type": type, "message": message}}
    if request_id is not None:
        body["request_id"] = request_id
    return body


def _usage(usage: Usage) -> dict[str, Any]:
    inp, out, cache_read, cache_creation = usage
    return {"input_tokens": inp, "cache_creation_input_tokens": cache_creation,
            "cache_read_input_tokens": cache_read, "output_tokens": out,
            "service_tier": "standard"}


def text_block(pieces: Sequence[str]) -> Block:
    return {"type": "text", "text": ""}, [{"type": "text_delta", "text": p} for p in pieces]


def thinking_block(pieces: Sequence[str], signature: str) -> Block:
    deltas = [{"type": "thinking_delta", "thinking": p} for p in pieces]
    return ({"type": "thinking", "thinking": "", "signature": ""},
            [*deltas, {"type": "signature_delta", "signature": signature}])


def redacted_thinking_block(data: str) -> Block:
    """Arrives complete in its ``content_block_start``; no deltas."""
    return {"type": "redacted_thinking", "data": data}, []


def tool_use_block(id: str, name: str, fragments: Sequence[str]) -> Block:
    start = {"type": "tool_use", "id": id, "name": name, "input": {},
             "caller": {"type": "direct"}}
    return start, [{"type": "input_json_delta", "partial_json": f} for f in fragments]


def blocks_stream(blocks: Sequence[Block], stop_reason: str = "end_turn",
                  usage: Usage = DEFAULT_USAGE, *, model: str = MODEL, msg_id: str = MSG_ID,
                  stop_sequence: str | None = None, stop_details: dict[str, Any] | None = None,
                  full_delta_usage: bool = False) -> list[bytes]:
    """``message_start`` (``content: []``, input/cache usage, ``output_tokens: 1``), then per
    block start/deltas/stop with a ``ping`` after the first start, ``message_delta``
    (``usage.output_tokens``; all four counts with ``full_delta_usage``), ``message_stop``.
    One frame per list item: ``[:-3] + [error_event()]`` cuts a one-block stream mid-block."""
    start_usage = _usage(usage)
    start_usage["output_tokens"] = 1
    out = [frame({"type": "message_start", "message": {
        "id": msg_id, "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": start_usage}})]
    for index, (block, deltas) in enumerate(blocks):
        out.append(frame({"type": "content_block_start", "index": index,
                          "content_block": block}))
        if index == 0:
            out.append(PING)
        out += [frame({"type": "content_block_delta", "index": index, "delta": d})
                for d in deltas]
        out.append(frame({"type": "content_block_stop", "index": index}))
    delta: dict[str, Any] = {"stop_reason": stop_reason, "stop_sequence": stop_sequence}
    if stop_details is not None:
        delta["stop_details"] = stop_details
    end_usage = _usage(usage) if full_delta_usage else {"output_tokens": usage[1]}
    end_usage.pop("service_tier", None)
    out.append(frame({"type": "message_delta", "delta": delta, "usage": end_usage}))
    out.append(frame({"type": "message_stop"}))
    return out


def text_stream(pieces: Sequence[str], stop_reason: str = "end_turn",
                usage: Usage = DEFAULT_USAGE, *, model: str = MODEL, msg_id: str = MSG_ID,
                **kwargs: Any) -> list[bytes]:
    """One text block, one ``text_delta`` per piece."""
    return blocks_stream([text_block(pieces)], stop_reason, usage, model=model,
                         msg_id=msg_id, **kwargs)


def thinking_stream(thinking_pieces: Sequence[str], signature: str, text_pieces: Sequence[str],
                    stop_reason: str = "end_turn", usage: Usage = DEFAULT_USAGE, *,
                    model: str = MODEL, msg_id: str = MSG_ID, **kwargs: Any) -> list[bytes]:
    """A thinking block (``thinking_delta`` per piece, then one ``signature_delta``), then
    a text block."""
    blocks = [thinking_block(thinking_pieces, signature), text_block(text_pieces)]
    return blocks_stream(blocks, stop_reason, usage, model=model, msg_id=msg_id, **kwargs)


def tool_use_stream(calls: Sequence[ToolCall], text_before: str | None = None,
                    stop_reason: str = "tool_use", usage: Usage = DEFAULT_USAGE, *,
                    model: str = MODEL, msg_id: str = MSG_ID, **kwargs: Any) -> list[bytes]:
    """[A text block], then one ``tool_use`` block per call (``input: {}`` at the start,
    each fragment an ``input_json_delta``; pass ``""`` first to mimic the real API)."""
    blocks = [text_block([text_before])] if text_before else []
    blocks += [tool_use_block(i, n, frags) for i, n, frags in calls]
    return blocks_stream(blocks, stop_reason, usage, model=model, msg_id=msg_id, **kwargs)


def message(content_blocks: str | Sequence[dict[str, Any]] = "Hello!",
            stop_reason: str = "end_turn", usage: Usage = DEFAULT_USAGE, *,
            model: str = MODEL, msg_id: str = MSG_ID,
            stop_sequence: str | None = None) -> dict[str, Any]:
    """A non-streaming Message body (a str is shorthand for one text block)."""
    content = ([{"type": "text", "text": content_blocks}] if isinstance(content_blocks, str)
               else [dict(b) for b in content_blocks])
    return {"id": msg_id, "type": "message", "role": "assistant", "model": model,
            "content": content, "stop_reason": stop_reason, "stop_sequence": stop_sequence,
            "usage": _usage(usage)}

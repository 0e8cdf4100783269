"""The fake backboard's reading and answering: FastAPI-style refusals, the message form,
a message's stream or JSON reply, and the model catalogue.

Layouts as backboard.md records them: the stream is ``run_started`` (a switch),
``content_streaming`` pieces, ``run_ended`` with status and token counts (1.7, 4.4); the
JSON reply is the flat ``MessageResponse`` or the ``{"messages": [...]}`` shape (1.6);
``GET /models`` is ``{"models": [...], "total": n}`` (4.5). Faults: an ``error`` or
``run_failed`` frame, ``run_ended`` with another status, no ``run_ended``, a cut body.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.fakes.backboard_model import HTTPFault, Reply, Thread, now, stored, words

if TYPE_CHECKING:
    from tests.fakes.backboard_upstream import FakeBackboard


def _model(provider: str, name: str, context: int, output: int, tools: bool = True,
           kind: str = "llm") -> dict[str, Any]:
    return {"name": name, "provider": provider, "model_type": kind, "context_limit": context,
            "max_output_tokens": output, "supports_tools": tools, "api_mode": "chat",
            "embedding_dimensions": 1536 if kind == "embedding" else None,
            "last_updated": "2026-03-01T00:00:00Z"}


CATALOGUE = [
    _model("openai", "gpt-4o", 128000, 16384), _model("openai", "gpt-4o-mini", 128000, 16384),
    _model("openai", "gpt-5", 400000, 128000), _model("openai", "o3-mini", 200000, 100000),
    _model("anthropic", "claude-sonnet-4-6", 200000, 64000),
    _model("anthropic", "claude-sonnet-4-5", 200000, 64000),
    _model("anthropic", "claude-opus-4-1", 200000, 32000),
    _model("anthropic", "claude-haiku-4-5", 200000, 64000),
    _model("google", "gemini-2.0-flash", 1048576, 8192),
    _model("google", "gemini-2.5-pro", 1048576, 65536),
    _model("mistral", "mistral-large-latest", 128000, 8192, tools=False),
    _model("openrouter", "meta-llama/llama-3.3-70b-instruct", 131072, 8192),
    _model("openai", "text-embedding-3-small", 8191, 0, tools=False, kind="embedding"),
]


# --------------------------------------------------------------- reading, refusing


def detail(status: int, value: Any, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response({"detail": value}, status=status, headers=headers)


def invalid(loc: list[Any], msg: str, kind: str, value: Any = None) -> web.Response:
    """FastAPI's 422: a list of what failed where."""
    entry: dict[str, Any] = {"loc": loc, "msg": msg, "type": kind}
    if value is not None:
        entry["input"] = value
    return detail(422, [entry])


def fault_response(fault: HTTPFault) -> web.Response:
    content_type = "text/html" if fault.raw is not None else "application/json"
    return web.Response(status=fault.status, body=fault.body(), headers=fault.headers,
                        content_type=content_type)


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def paging(request: web.Request, most: int) -> tuple[int | web.Response, int]:
    try:
        skip, limit = int(request.query.get("skip", 0)), int(request.query.get("limit", 100))
    except ValueError:
        return invalid(["query", "limit"], "Input should be a valid integer", "int_parsing"), 0
    if skip < 0 or not 1 <= limit <= most:
        return invalid(["query", "limit"], f"Input should be between 1 and {most}",
                       "less_than_equal", limit), 0
    return skip, limit


async def json_body(request: web.Request) -> Any:
    try:
        return json.loads(await request.read() or b"null")
    except ValueError:
        return invalid(["body"], "JSON decode error", "json_invalid")


async def message_fields(request: web.Request) -> dict[str, Any] | web.Response:
    """The message form, however it came: JSON, urlencoded or multipart (backboard.md 1.5)."""
    files: list[str] = []
    if request.content_type == "application/json":
        body = await json_body(request)
        if isinstance(body, web.Response):
            return body
        if not isinstance(body, dict):
            return invalid(["body"], "Input should be a valid dictionary", "dict_type")
        raw: dict[str, Any] = body
    else:
        form = await request.post()
        raw = {}
        for name, value in form.items():
            if isinstance(value, web.FileField):
                files.append(value.filename)
            else:
                raw[name] = value
    return {**raw, "content": raw.get("content") or "", "files": files,
            "llm_provider": raw.get("llm_provider") or "openai",
            "model_name": raw.get("model_name") or "gpt-4o",
            "memory": raw.get("memory") or "off", "stream": _flag(raw.get("stream"), False),
            "send_to_llm": _flag(raw.get("send_to_llm"), True)}


def _flag(value: Any, default: bool) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return default


def thread_json(thread: Thread, with_messages: bool = False) -> dict[str, Any]:
    return {"thread_id": thread.thread_id, "created_at": thread.created_at,
            "messages": thread.messages if with_messages else [], "metadata_": None}


# ---------------------------------------------------------------------- the stream


async def answer_stream(fake: FakeBackboard, request: web.Request, thread: Thread,
                        reply: Reply, provider: str, model: str) -> web.StreamResponse:
    wire = fake.wire
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-cache"})
    await response.prepare(request)
    run_id = "run_" + uuid.uuid4().hex[:16]
    pieces = reply.content_pieces(wire.chunk_size)
    sent = pieces if reply.fault_after is None else pieces[: reply.fault_after]
    delay = wire.delay if reply.delay is None else reply.delay
    try:
        if wire.run_started:
            await response.write(wire.frame({"type": "run_started", "run_id": run_id,
                                             "thread_id": thread.thread_id}))
        await _reasoning(response, fake, reply)
        for n, piece in enumerate(sent):
            if n and delay:
                await asyncio.sleep(delay)
            if n == reply.hold_after:
                reply.holding.set()
                await reply.release.wait()
            await response.write(wire.frame({"type": "content_streaming", "content": piece}))
        if reply.fault == "cut":
            _cut(request)
            return response
        if reply.fault in ("error", "run_failed", "status"):
            await response.write(wire.frame(_fault_frame(reply, run_id)))
        elif reply.fault != "no_run_ended":
            if reply.end_delay:
                await asyncio.sleep(reply.end_delay)
            end = run_ended(thread, reply, provider, model, run_id)
            await response.write(wire.frame(dict(end, status=wire.completed())))
        if reply.fault in (None, "no_run_ended"):
            thread.messages.append(stored("assistant", "".join(sent),
                                          output_tokens=words("".join(sent))))
        if wire.done_marker:
            await response.write(wire.done())
    except (ConnectionError, asyncio.CancelledError):
        fake.disconnects += 1
        raise
    return response


async def _reasoning(response: web.StreamResponse, fake: FakeBackboard, reply: Reply) -> None:
    so_far = ""
    for piece in reply.reasoning:
        so_far += piece
        await response.write(fake.wire.frame({"type": "reasoning_streaming", "content": piece,
                                              "accumulated_reasoning": so_far}))
    if reply.reasoning:
        await response.write(fake.wire.frame({"type": "reasoning_ended"}))


def run_ended(thread: Thread, reply: Reply, provider: str, model: str,
              run_id: str) -> dict[str, Any]:
    """``run_ended`` with backboard's fields; token counts are words (the thread's, the
    reply's), left out when the reply says so."""
    frame: dict[str, Any] = {"type": "run_ended", "status": "completed", "run_id": run_id,
                             "model_provider": provider, "model_name": model,
                             "memory_operation_id": None}
    if reply.usage:
        inp = sum(words(m["content"]) for m in thread.messages)
        out = words(reply.full_text())
        frame.update(input_tokens=inp, output_tokens=out, total_tokens=inp + out)
    return frame


def _fault_frame(reply: Reply, run_id: str) -> dict[str, Any]:
    if reply.fault == "error":
        return {"type": "error", "error": reply.fault_message, "run_id": run_id}
    if reply.fault == "run_failed":
        return {"type": "run_failed", "message": reply.fault_message, "run_id": run_id}
    return {"type": "run_ended", "status": reply.status, "run_id": run_id}


def _cut(request: web.Request) -> None:
    """Close the socket mid-body: no chunked terminator, so the client sees a cut."""
    request.protocol.force_close()
    if request.transport is not None:
        request.transport.close()


# ------------------------------------------------------------------------ the JSON reply


async def answer_json(fake: FakeBackboard, request: web.Request, thread: Thread,
                      reply: Reply, provider: str, model: str) -> web.StreamResponse:
    if reply.end_delay:
        await asyncio.sleep(reply.end_delay)
    if reply.fault in ("cut", "no_run_ended"):
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.content_length = 4096
        await response.prepare(request)
        await response.write(b'{"message": "Message added succ')
        _cut(request)
        return response
    if reply.fault in ("error", "run_failed"):
        return web.json_response({"detail": reply.fault_message}, status=500)
    run_id = "run_" + uuid.uuid4().hex[:16]
    end = run_ended(thread, reply, provider, model, run_id)
    failed = reply.fault == "status"
    text = None if failed else reply.full_text()
    message = stored("assistant", text, output_tokens=end.get("output_tokens", 0))
    message.update(status=reply.status.upper() if failed else "COMPLETED", thread_id=
                   thread.thread_id, run_id=run_id, tool_calls=None, model_provider=provider,
                   model_name=model, memory_operation_id=None, retrieved_memories=None,
                   retrieved_files=None, timestamp=now())
    for name in ("input_tokens", "output_tokens", "total_tokens"):
        message[name] = end.get(name)
    if not failed:
        thread.messages.append(stored("assistant", text, output_tokens=words(text)))
    if fake.wire.reply_shape == "messages":
        usage = {"percent": 1.0, "used_tokens": end.get("input_tokens"),
                 "context_limit": 128000, "summary_tokens": 0, "model": model}
        return web.json_response({"messages": [thread.messages[-2 if not failed else -1],
                                               message], "context_usage": usage})
    return web.json_response({"message": "Message added successfully", **message})


# ----------------------------------------------------------------------------- models


def models_answer(catalogue: list[dict[str, Any]], query: Mapping[str, str]) -> web.Response:
    try:
        skip, limit = int(query.get("skip", 0)), int(query.get("limit", 100))
        least, most = int(query.get("min_context", 0)), int(query.get("max_context", 1 << 40))
    except ValueError:
        return web.json_response({"detail": [{"loc": ["query"], "msg": "Input should be a "
                                              "valid integer", "type": "int_parsing"}]},
                                 status=422)
    if skip < 0 or not 1 <= limit <= 500:
        return web.json_response({"detail": [{"loc": ["query", "limit"], "msg": "Input should "
                                              "be between 1 and 500", "type": "less_than_equal",
                                              "input": limit}]}, status=422)
    found = [m for m in catalogue if least <= m["context_limit"] <= most
             and query.get("model_type", m["model_type"]) == m["model_type"]
             and query.get("provider", m["provider"]) == m["provider"]
             and query.get("supports_tools", str(m["supports_tools"])).lower()
             == str(m["supports_tools"]).lower()]
    return web.json_response({"models": found[skip:skip + limit], "total": len(found)})


def providers_answer(catalogue: list[dict[str, Any]]) -> web.Response:
    providers = sorted({m["provider"] for m in catalogue})
    return web.json_response({"providers": providers, "total": len(providers)})

"""The HTTP handlers: thin, each parses, hands over to a backend or answers, and returns.

Routes match on the path alone, so Claude Code's ``?beta=true`` and any other query
string are fine.
"""

from __future__ import annotations

import secrets
from typing import Any

import orjson
from aiohttp import web

from proxy.backends.base import Call
from proxy.dialects.anthropic import responses as anthropic_responses
from proxy.dialects.anthropic.request_parse import parse_request
from proxy.dialects.anthropic.stream_encode import PING, AnthropicStreamEncoder, error_frame
from proxy.dialects.fields import parse_json_object
from proxy.dialects.openai import responses as openai_responses
from proxy.edge.errors import ANTHROPIC, client_dialect
from proxy.edge.middleware import client_key
from proxy.edge.streaming import collect_events, stream_events
from proxy.errors import NotConfigured, RequestTooLarge
from proxy.keys import BACKEND_KEY, MODEL_KEY, SETTINGS_KEY
from proxy.tokens import estimate_input_tokens


async def read_json(request: web.Request) -> dict[str, Any]:
    limit = request.app[SETTINGS_KEY].max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise RequestTooLarge(f"The request body is {request.content_length} bytes; this "
                              f"proxy accepts at most {limit} (MAX_BODY_BYTES).")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise RequestTooLarge(f"The request body is larger than {limit} bytes "
                              "(MAX_BODY_BYTES).") from None
    return parse_json_object(raw)


async def messages(request: web.Request) -> web.StreamResponse:
    """``POST /v1/messages``: an Anthropic client, streaming or not."""
    parsed = parse_request(await read_json(request))
    request[MODEL_KEY] = parsed.model
    settings = request.app[SETTINGS_KEY]
    if not settings.upstream_configured:
        raise NotConfigured("llm-dialect-proxy has no upstream configured: start it with "
                            "--upstream URL (or set UPSTREAM_URL), e.g. "
                            "https://api.deepseek.com/v1.")
    call = Call(message_id=f"msg_{secrets.token_hex(12)}", client_model=parsed.model,
                input_tokens=estimate_input_tokens(parsed), client_key=client_key(request))
    batches = request.app[BACKEND_KEY].stream(parsed, call)
    if parsed.stream:
        return await stream_events(request, batches, AnthropicStreamEncoder(), ping=PING,
                                   interval=settings.ping_interval, error_frame=error_frame)
    message = await collect_events(request, batches)
    return _json(anthropic_responses.message_body(message))


async def count_tokens(request: web.Request) -> web.Response:
    """``POST /v1/messages/count_tokens``: the same local estimate message_start reports."""
    parsed = parse_request(await read_json(request), for_counting=True)
    return _json(anthropic_responses.count_tokens_body(estimate_input_tokens(parsed)))


async def models(request: web.Request) -> web.Response:
    """``GET /v1/models`` in the asking client's format."""
    settings = request.app[SETTINGS_KEY]
    listed = [(settings.model, settings.model)] if settings.model else []
    if client_dialect(request) == ANTHROPIC:
        return _json(anthropic_responses.models_body(listed))
    return _json(openai_responses.models_body(listed))


async def health(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS_KEY]
    return _json({"status": "ok", "upstream_configured": settings.upstream_configured})


async def root(request: web.Request) -> web.Response:
    """``GET``/``HEAD /``: Claude Code probes it at start-up; answer at once."""
    return _json({"service": "llm-dialect-proxy", "health": "/health"})


def _json(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/messages", messages)
    app.router.add_post("/v1/messages/count_tokens", count_tokens)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/health", health)
    app.router.add_get("/", root)

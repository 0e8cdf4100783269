"""Handlers for Anthropic clients (Claude Code, the anthropic SDK): ``/v1/messages`` and
``/v1/messages/count_tokens``. Translated for an OpenAI-compatible upstream; relayed
byte for byte to an Anthropic one."""

from __future__ import annotations

import secrets

from aiohttp import web

from proxy.backends.anthropic_http import anthropic_headers
from proxy.backends.base import Call
from proxy.backends.http_common import upstream_key
from proxy.dialects.anthropic import responses as anthropic_responses
from proxy.dialects.anthropic.request_parse import parse_request
from proxy.dialects.anthropic.stream_encode import PING, AnthropicStreamEncoder, error_frame
from proxy.edge.body import json_response, read_body, require_upstream, with_model
from proxy.edge.middleware import client_key
from proxy.edge.relay import forwarded_headers, relay
from proxy.edge.streaming import collect_events, stream_events
from proxy.keys import BACKEND_KEY, MODEL_KEY, SETTINGS_KEY, UPSTREAM_SESSION_KEY
from proxy.tokens import estimate_input_tokens


async def messages(request: web.Request) -> web.StreamResponse:
    """``POST /v1/messages``: streaming or not."""
    raw, body = await read_body(request)
    settings = request.app[SETTINGS_KEY]
    if settings.anthropic:
        return await _relay(request, raw, body, "/v1/messages")
    parsed = parse_request(body)
    request[MODEL_KEY] = parsed.model
    require_upstream(settings)
    call = Call(message_id=f"msg_{secrets.token_hex(12)}", client_model=parsed.model,
                input_tokens=estimate_input_tokens(parsed), client_key=client_key(request))
    batches = request.app[BACKEND_KEY].stream(parsed, call)
    if parsed.stream:
        return await stream_events(request, batches, AnthropicStreamEncoder(), ping=PING,
                                   interval=settings.ping_interval, error_frame=error_frame)
    message = await collect_events(request, batches)
    return json_response(anthropic_responses.message_body(message))


async def count_tokens(request: web.Request) -> web.StreamResponse:
    """``POST /v1/messages/count_tokens``: the upstream's count when it is Anthropic,
    else the same local estimate ``message_start`` reports."""
    raw, body = await read_body(request)
    if request.app[SETTINGS_KEY].anthropic:
        return await _relay(request, raw, body, "/v1/messages/count_tokens")
    parsed = parse_request(body, for_counting=True)
    return json_response(anthropic_responses.count_tokens_body(estimate_input_tokens(parsed)))


async def _relay(request: web.Request, raw: bytes, body: dict[str, object],
                 path: str) -> web.StreamResponse:
    settings = request.app[SETTINGS_KEY]
    require_upstream(settings)
    requested = body.get("model")
    model = settings.upstream_model(requested if isinstance(requested, str) else "")
    request[MODEL_KEY] = model
    key = upstream_key(settings, client_key(request))
    client_headers = forwarded_headers(request)
    headers = {**client_headers, **anthropic_headers(settings, key, client_headers)}
    if not settings.claude_code_headers:  # the client speaks for itself
        headers.update({k: client_headers[k] for k in ("user-agent", "accept")
                        if k in client_headers})
    url = settings.upstream_url.rstrip("/") + path
    if request.query_string:
        url += "?" + request.query_string
    return await relay(request, request.app[UPSTREAM_SESSION_KEY], url,
                       with_model(raw, body, model), headers, key, error_frame)

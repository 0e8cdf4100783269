"""Handlers for OpenAI clients (the openai SDK, LiteLLM, Continue, Open WebUI, Cursor):
``/v1/chat/completions``, also under ``/api/v1``. Translated for an Anthropic upstream;
relayed byte for byte to an OpenAI-compatible one."""

from __future__ import annotations

import secrets
import time
from dataclasses import replace

from aiohttp import web

from proxy.backends.base import Call
from proxy.backends.http_common import upstream_key
from proxy.canonical import Request
from proxy.config import Settings
from proxy.dialects.openai import responses as openai_responses
from proxy.dialects.openai.request_parse import parse_request, wants_usage
from proxy.dialects.openai.stream_encode import PING, OpenAIStreamEncoder, error_frame
from proxy.edge.body import json_response, read_body, require_upstream, with_model
from proxy.edge.middleware import client_key
from proxy.edge.relay import forwarded_headers, relay
from proxy.edge.streaming import collect_events, stream_events
from proxy.keys import BACKEND_KEY, MODEL_KEY, SETTINGS_KEY, UPSTREAM_SESSION_KEY
from proxy.tokens import estimate_input_tokens


async def chat_completions(request: web.Request) -> web.StreamResponse:
    raw, body = await read_body(request)
    settings = request.app[SETTINGS_KEY]
    if not settings.anthropic:
        return await _relay(request, raw, body)
    parsed = _with_defaults(parse_request(body, default_model=settings.model), settings)
    request[MODEL_KEY] = parsed.model
    require_upstream(settings)
    completion_id = f"chatcmpl-{secrets.token_hex(12)}"
    call = Call(message_id=completion_id, client_model=parsed.model,
                input_tokens=estimate_input_tokens(parsed), client_key=client_key(request))
    batches = request.app[BACKEND_KEY].stream(parsed, call)
    if parsed.stream:
        encoder = OpenAIStreamEncoder(chunk_id=completion_id, model=parsed.model,
                                      include_usage=wants_usage(body))
        return await stream_events(request, batches, encoder, ping=PING,
                                   interval=settings.ping_interval, error_frame=error_frame)
    message = await collect_events(request, batches)
    return json_response(openai_responses.completion_body(
        message, completion_id=completion_id, created=int(time.time())))


def _with_defaults(request: Request, settings: Settings) -> Request:
    """SYSTEM_PROMPT only where the request brings no system message of its own."""
    has_system = request.system or any(m.role == "system" for m in request.messages)
    if settings.system_prompt and not has_system:
        return replace(request, system=(settings.system_prompt,))
    return request


async def _relay(request: web.Request, raw: bytes, body: dict[str, object]) -> web.StreamResponse:
    settings = request.app[SETTINGS_KEY]
    require_upstream(settings)
    requested = body.get("model")
    model = settings.upstream_model(requested if isinstance(requested, str) else "")
    request[MODEL_KEY] = model
    key = upstream_key(settings, client_key(request))
    headers = forwarded_headers(request)
    if key:
        headers["authorization"] = f"Bearer {key}"
    return await relay(request, request.app[UPSTREAM_SESSION_KEY], settings.chat_completions_url,
                       with_model(raw, body, model), headers, key, error_frame)

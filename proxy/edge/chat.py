"""Handlers for OpenAI clients (the openai SDK, LiteLLM, Continue, Open WebUI, Cursor):
``/v1/chat/completions``, also under ``/api/v1``. Relayed byte for byte when the routed
provider speaks OpenAI; translated otherwise."""

from __future__ import annotations

import secrets
import time
from dataclasses import replace
from functools import partial
from typing import Any

from aiohttp import web

from proxy.backends.base import Call
from proxy.canonical import Request
from proxy.config import Settings
from proxy.dialects.openai import responses as openai_responses
from proxy.dialects.openai.request_parse import parse_request, wants_usage
from proxy.dialects.openai.stream_encode import PING, OpenAIStreamEncoder, error_frame
from proxy.edge.body import json_response, read_body, require_upstream, with_model
from proxy.edge.middleware import client_key
from proxy.edge.relay import Fallback, Target, forwarded_headers, relay
from proxy.edge.streaming import collect_events, stream_events
from proxy.keys import ROUTER_KEY, SETTINGS_KEY, TRACE_KEY, UPSTREAMS_KEY
from proxy.routing import Plan, Route
from proxy.tokens import estimate_input_tokens


async def chat_completions(request: web.Request) -> web.StreamResponse:
    raw, body = await read_body(request)
    settings = request.app[SETTINGS_KEY]
    require_upstream(settings)
    requested = body.get("model") if isinstance(body.get("model"), str) else ""
    plan = request.app[ROUTER_KEY].plan(requested or settings.model)
    if plan.first.provider.dialect == "openai":
        # Relayed to OpenAI-compatible providers; fallbacks of the other dialect, if any
        # are left when those fail, take the request translated.
        others = Plan(tuple(r for r in plan.routes if r.provider.dialect != "openai"))
        then = partial(_translated, request, body, others) if others.routes else None
        return await _relay(request, raw, body, plan, then)
    return await _translated(request, body, plan)


async def _translated(request: web.Request, body: dict[str, Any],
                      plan: Plan) -> web.StreamResponse:
    settings = request.app[SETTINGS_KEY]
    parsed = _with_defaults(parse_request(body, default_model=settings.model), settings)
    request[TRACE_KEY].model_asked = parsed.model
    completion_id = f"chatcmpl-{secrets.token_hex(12)}"
    call = Call(message_id=completion_id, client_model=parsed.model,
                input_tokens=estimate_input_tokens(parsed), client_key=client_key(request),
                commit_wait=settings.ping_interval)
    trace = request[TRACE_KEY]
    batches = request.app[UPSTREAMS_KEY].stream(parsed, call, plan, trace)
    if parsed.stream:
        encoder = OpenAIStreamEncoder(chunk_id=completion_id, model=parsed.model,
                                      include_usage=wants_usage(body))
        return await stream_events(request, batches, encoder, ping=PING,
                                   interval=settings.ping_interval, error_frame=error_frame)
    message = await collect_events(request, batches)
    return json_response(openai_responses.completion_body(
        message, completion_id=completion_id, created=int(time.time())), trace=trace)


def _with_defaults(request: Request, settings: Settings) -> Request:
    """SYSTEM_PROMPT only where the request brings no system message of its own."""
    has_system = request.system or any(m.role == "system" for m in request.messages)
    if settings.system_prompt and not has_system:
        return replace(request, system=(settings.system_prompt,))
    return request


async def _relay(request: web.Request, raw: bytes, body: dict[str, Any], plan: Plan,
                 then: Fallback | None) -> web.StreamResponse:
    upstreams = request.app[UPSTREAMS_KEY]
    request[TRACE_KEY].model_asked = str(body.get("model") or plan.first.model)
    client_headers = forwarded_headers(request)

    def target(route: Route, key: str | None) -> Target:
        headers = {**client_headers, **dict(route.provider.headers)}
        if key:
            headers["authorization"] = f"Bearer {key}"
        return (upstreams.sessions[route.provider.name], route.provider.chat_completions_url,
                headers, with_model(raw, body, route.model))

    same_dialect = Plan(tuple(r for r in plan.routes if r.provider.dialect == "openai"))
    attempts = upstreams.attempts(same_dialect, client_key(request), request[TRACE_KEY])
    return await relay(request, attempts, target, error_frame, then)

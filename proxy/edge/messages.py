"""Handlers for Anthropic clients (Claude Code, the anthropic SDK): ``/v1/messages`` and
``/v1/messages/count_tokens``. Relayed byte for byte when the routed provider speaks
Anthropic; translated otherwise."""

from __future__ import annotations

import contextlib
import hashlib
import secrets
from functools import partial
from typing import Any

from aiohttp import web

from proxy.backends.anthropic_http import anthropic_headers
from proxy.backends.base import Call
from proxy.dialects.anthropic import responses as anthropic_responses
from proxy.dialects.anthropic.request_parse import parse_request
from proxy.dialects.anthropic.stream_encode import PING, AnthropicStreamEncoder, error_frame
from proxy.edge.body import json_response, read_body, require_upstream, with_model
from proxy.edge.middleware import client_key
from proxy.edge.relay import Fallback, Target, forwarded_headers, relay
from proxy.edge.streaming import collect_events, stream_events
from proxy.errors import NotFound
from proxy.keys import ROUTER_KEY, SETTINGS_KEY, TOKEN_COUNTS_KEY, TRACE_KEY, UPSTREAMS_KEY
from proxy.routing import Plan, Route
from proxy.tokens import estimate_input_tokens

TOKEN_COUNT_CACHE = 1024  # estimates kept, by body hash


async def messages(request: web.Request) -> web.StreamResponse:
    """``POST /v1/messages``: streaming or not."""
    raw, body = await read_body(request)
    settings = request.app[SETTINGS_KEY]
    require_upstream(settings)
    plan = request.app[ROUTER_KEY].plan(_model(body))
    if plan.first.provider.dialect == "anthropic":
        # Relayed to Anthropic providers; fallbacks of the other dialect, if any are left
        # when those fail, take the request translated.
        others = Plan(tuple(r for r in plan.routes if r.provider.dialect != "anthropic"))
        then = partial(_translated, request, body, others) if others.routes else None
        return await _relay(request, raw, body, plan, "", then)
    return await _translated(request, body, plan)


async def _translated(request: web.Request, body: dict[str, Any],
                      plan: Plan) -> web.StreamResponse:
    settings = request.app[SETTINGS_KEY]
    parsed = parse_request(body)
    request[TRACE_KEY].model_asked = parsed.model
    call = Call(message_id=f"msg_{secrets.token_hex(12)}", client_model=parsed.model,
                input_tokens=estimate_input_tokens(parsed), client_key=client_key(request),
                commit_wait=settings.ping_interval)
    trace = request[TRACE_KEY]
    batches = request.app[UPSTREAMS_KEY].stream(parsed, call, plan, trace)
    if parsed.stream:
        return await stream_events(request, batches, AnthropicStreamEncoder(), ping=PING,
                                   interval=settings.ping_interval, error_frame=error_frame)
    message = await collect_events(request, batches)
    return json_response(anthropic_responses.message_body(message), trace=trace)


async def count_tokens(request: web.Request) -> web.StreamResponse:
    """``POST /v1/messages/count_tokens``: the upstream's count when it speaks Anthropic,
    else the same local estimate ``message_start`` reports (never sent elsewhere)."""
    raw, body = await read_body(request)
    settings = request.app[SETTINGS_KEY]
    if settings.upstream_configured:
        with contextlib.suppress(NotFound):  # an unknown model can still be counted here
            plan = request.app[ROUTER_KEY].plan(_model(body))
            if plan.first.provider.dialect == "anthropic":
                return await _relay(request, raw, body, plan, "/count_tokens")
    counts = request.app[TOKEN_COUNTS_KEY]
    key = hashlib.sha1(raw).digest()
    count = counts.get(key)
    if count is None:  # Claude Code sends the same sections again and again, in bursts
        count = counts[key] = estimate_input_tokens(parse_request(body, for_counting=True))
        if len(counts) > TOKEN_COUNT_CACHE:
            counts.pop(next(iter(counts)))
    return json_response(anthropic_responses.count_tokens_body(count))


def _model(body: dict[str, Any]) -> str:
    model = body.get("model")
    return model if isinstance(model, str) else ""


async def _relay(request: web.Request, raw: bytes, body: dict[str, Any], plan: Plan,
                 suffix: str, then: Fallback | None = None) -> web.StreamResponse:
    app = request.app
    settings, upstreams = app[SETTINGS_KEY], app[UPSTREAMS_KEY]
    request[TRACE_KEY].model_asked = _model(body) or plan.first.model
    client_headers = forwarded_headers(request)
    query = f"?{request.query_string}" if request.query_string else ""

    def target(route: Route, key: str | None) -> Target:
        headers = {**client_headers, **anthropic_headers(settings, key, client_headers),
                   **dict(route.provider.headers)}
        if not settings.claude_code_headers:  # the client speaks for itself
            headers.update({k: client_headers[k] for k in ("user-agent", "accept")
                            if k in client_headers})
        return (upstreams.sessions[route.provider.name],
                route.provider.messages_url + suffix + query, headers,
                with_model(raw, body, route.model))

    same_dialect = Plan(tuple(r for r in plan.routes if r.provider.dialect == "anthropic"))
    attempts = upstreams.attempts(same_dialect, client_key(request), request[TRACE_KEY])
    return await relay(request, attempts, target, error_frame, then)

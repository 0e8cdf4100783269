"""Handlers for Anthropic clients (Claude Code, the anthropic SDK): ``/v1/messages`` and
``/v1/messages/count_tokens``. Relayed byte for byte when the routed provider's wire is
Anthropic; translated otherwise."""

from __future__ import annotations

import contextlib
import hashlib
import secrets
from functools import partial
from typing import Any

from aiohttp import web

from proxy.canonical import Request
from proxy.dialects.anthropic import responses as anthropic_responses
from proxy.dialects.anthropic.request_parse import parse_request
from proxy.dialects.anthropic.stream_encode import PING, AnthropicStreamEncoder, error_frame
from proxy.dialects.fields import parse_json_object
from proxy.edge.body import (
    Handover,
    body_model,
    json_response,
    parse_body,
    peek_model,
    read_body,
    read_raw,
    require_upstream,
)
from proxy.edge.calls import backend_call, dropped_headers
from proxy.edge.middleware import check_caller
from proxy.edge.relay import relay, relay_request
from proxy.edge.streaming import collect_events, stream_events
from proxy.errors import NotFound
from proxy.keys import (
    ROUTER_KEY,
    SETTINGS_KEY,
    TOKEN_COUNTS_KEY,
    TRACE_KEY,
    UPSTREAMS_KEY,
)
from proxy.offload import off_loop
from proxy.routing import Plan
from proxy.tokens import estimate_input_tokens

WIRE = "anthropic"
TOKEN_COUNT_CACHE = 1024  # estimates kept, by body hash


async def messages(request: web.Request) -> web.StreamResponse:
    """``POST /v1/messages``: streaming or not."""
    raw = await read_raw(request)
    # The model is all a relay needs; with no Anthropic provider to relay to, parse it all.
    peeked = peek_model(raw) if WIRE in request.app[ROUTER_KEY].wires else None
    body = None if peeked is not None else await parse_body(raw)
    model = body_model(body) if body is not None else peeked or ""
    require_upstream(request.app[SETTINGS_KEY])
    plan = request.app[ROUTER_KEY].plan(model)
    check_caller(request, model, plan)
    if plan.first.provider.wire == WIRE:
        # Relayed to Anthropic providers, unparsed when the model is all it needs;
        # fallbacks of the other kinds, if any are left when those fail, take the request
        # translated.
        others = plan.translated(WIRE)
        then = partial(_translated, request, raw, body, others) if others.routes else None
        request[TRACE_KEY].model_asked = model or plan.first.model
        relayed = relay_request(request, raw, model, body)
        del raw, body  # the relay holds what it needs (and ``then`` what it would)
        return await relay(request, relayed, plan.relayed(WIRE), error_frame, then)
    handover, estimate = await _parsed(raw, body)
    del raw, body  # this frame lives as long as the stream: it keeps neither
    return await _answer(request, handover, estimate, plan)


async def _translated(request: web.Request, raw: bytes, body: dict[str, Any] | None,
                      plan: Plan) -> web.StreamResponse:
    """The translated path for a relay's fallbacks of other kinds."""
    handover, estimate = await _parsed(raw, body)
    return await _answer(request, handover, estimate, plan)


async def _parsed(raw: bytes, body: dict[str, Any] | None) -> tuple[Handover, int]:
    if body is None:
        body = await parse_body(raw)
    parsed, estimate = await off_loop(len(raw), _parse, body)
    return Handover(parsed, raw), estimate


async def _answer(request: web.Request, handover: Handover, estimate: int,
                  plan: Plan) -> web.StreamResponse:
    settings, trace = request.app[SETTINGS_KEY], request[TRACE_KEY]
    parsed, raw = handover.take()
    trace.model_asked = parsed.model
    call = backend_call(request, f"msg_{secrets.token_hex(12)}", parsed.model, estimate,
                        len(raw))
    upstreams = request.app[UPSTREAMS_KEY]
    batches = upstreams.stream(parsed, call, plan, trace, partial(_parse_again, raw))
    del raw
    dropped = dropped_headers(request, parsed.dropped + upstreams.unserved(parsed))
    streaming = parsed.stream
    del parsed  # the backends hold it while a retry may still need it, no longer
    if streaming:
        return await stream_events(request, batches, AnthropicStreamEncoder(), ping=PING,
                                   interval=settings.ping_interval, error_frame=error_frame,
                                   headers=dropped)
    message = await collect_events(request, batches)
    response = json_response(anthropic_responses.message_body(message), trace=trace)
    response.headers.update(dropped)
    return response


def _parse(body: dict[str, Any]) -> tuple[Request, int]:
    parsed = parse_request(body)
    return parsed, estimate_input_tokens(parsed)


def _parse_again(raw: bytes) -> Request:
    """For a retry: the request parsed from its bytes, which is all a request in flight
    keeps until it is committed."""
    return parse_request(parse_json_object(raw))


async def count_tokens(request: web.Request) -> web.StreamResponse:
    """``POST /v1/messages/count_tokens``: the upstream's count when it speaks Anthropic,
    else the same local estimate ``message_start`` reports (never sent elsewhere)."""
    raw, body = await read_body(request)
    if request.app[SETTINGS_KEY].upstream_configured:
        model = body_model(body)
        with contextlib.suppress(NotFound):  # an unknown model can still be counted here
            plan = request.app[ROUTER_KEY].plan(model)
            if plan.first.provider.wire == WIRE:
                request[TRACE_KEY].model_asked = model or plan.first.model
                relayed = relay_request(request, raw, model, body, "/count_tokens")
                return await relay(request, relayed,
                                   plan.relayed(WIRE), error_frame)
    counts = request.app[TOKEN_COUNTS_KEY]
    key = hashlib.sha1(raw).digest()
    count = counts.get(key)
    if count is None:  # Claude Code sends the same sections again and again, in bursts
        count = counts[key] = await off_loop(len(raw), _count, body)
        if len(counts) > TOKEN_COUNT_CACHE:
            counts.pop(next(iter(counts)))
    return json_response(anthropic_responses.count_tokens_body(count))


def _count(body: dict[str, Any]) -> int:
    return estimate_input_tokens(parse_request(body, for_counting=True))

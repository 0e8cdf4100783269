"""Handlers for OpenAI clients (the openai SDK, LiteLLM, Continue, Open WebUI, Cursor):
``/v1/chat/completions``, also under ``/api/v1``. Relayed byte for byte when the routed
provider's wire is OpenAI; translated otherwise."""

from __future__ import annotations

import secrets
import time
from dataclasses import replace
from functools import partial
from typing import Any

from aiohttp import web

from proxy.canonical import Request
from proxy.config import Settings
from proxy.dialects.fields import parse_json_object
from proxy.dialects.openai import responses as openai_responses
from proxy.dialects.openai.request_parse import parse_request, wants_usage
from proxy.dialects.openai.stream_encode import PING, OpenAIStreamEncoder, error_frame
from proxy.edge.body import (
    Handover,
    body_model,
    json_response,
    parse_body,
    peek_model,
    read_raw,
    require_upstream,
)
from proxy.edge.calls import backend_call, dropped_headers
from proxy.edge.middleware import check_caller
from proxy.edge.relay import relay, relay_request
from proxy.edge.streaming import collect_events, stream_events
from proxy.keys import ROUTER_KEY, SETTINGS_KEY, TRACE_KEY, UPSTREAMS_KEY
from proxy.offload import off_loop
from proxy.routing import Plan
from proxy.tokens import estimate_input_tokens

WIRE = "openai"


async def chat_completions(request: web.Request) -> web.StreamResponse:
    raw = await read_raw(request)
    settings = request.app[SETTINGS_KEY]
    upstreams = request.app[UPSTREAMS_KEY]
    # The model is all a relay needs, unless web search must be looked for (Tavily set up);
    # with no OpenAI-compatible provider to relay to, parse it all.
    router = request.app[ROUTER_KEY]
    relayable = WIRE in router.wires and not upstreams.runs_web_tools
    peeked = peek_model(raw) if relayable else None
    body = None if peeked is not None else await parse_body(raw)
    requested = peeked if body is None else body_model(body)
    require_upstream(settings)
    plan = router.plan(requested or settings.model)
    check_caller(request, requested or settings.model, plan)
    # Few OpenAI-compatible upstreams search the web: with Tavily set up, the proxy does.
    searching = body is not None and body.get("web_search_options") is not None \
        and upstreams.runs_web_tools
    if plan.first.provider.wire == WIRE and not searching:
        # Relayed to OpenAI-compatible providers, unparsed when the model is all it needs;
        # fallbacks of the other kinds, if any are left when those fail, take the request
        # translated.
        others = plan.translated(WIRE)
        then = partial(_translated, request, raw, body, others) if others.routes else None
        request[TRACE_KEY].model_asked = requested or plan.first.model
        relayed = relay_request(request, raw, requested or "", body)
        del raw, body  # the relay holds what it needs (and ``then`` what it would)
        return await relay(request, relayed, plan.relayed(WIRE), error_frame, then)
    handover, estimate, usage = await _parsed(raw, body, settings)
    del raw, body  # this frame lives as long as the stream: it keeps neither
    return await _answer(request, handover, estimate, usage, plan)


async def _translated(request: web.Request, raw: bytes, body: dict[str, Any] | None,
                      plan: Plan) -> web.StreamResponse:
    """The translated path for a relay's fallbacks of other kinds."""
    handover, estimate, usage = await _parsed(raw, body, request.app[SETTINGS_KEY])
    return await _answer(request, handover, estimate, usage, plan)


async def _parsed(raw: bytes, body: dict[str, Any] | None,
                  settings: Settings) -> tuple[Handover, int, bool]:
    if body is None:
        body = await parse_body(raw)
    parsed, estimate = await off_loop(len(raw), _parse, body, settings)
    return Handover(parsed, raw), estimate, wants_usage(body)


async def _answer(request: web.Request, handover: Handover, estimate: int,
                  include_usage: bool, plan: Plan) -> web.StreamResponse:
    settings, trace = request.app[SETTINGS_KEY], request[TRACE_KEY]
    parsed, raw = handover.take()
    trace.model_asked = model = parsed.model
    completion_id = f"chatcmpl-{secrets.token_hex(12)}"
    call = backend_call(request, completion_id, model, estimate, len(raw))
    upstreams = request.app[UPSTREAMS_KEY]
    batches = upstreams.stream(parsed, call, plan, trace,
                               partial(_parse_again, raw, settings))
    del raw
    dropped = dropped_headers(request, parsed.dropped + upstreams.unserved(parsed))
    streaming = parsed.stream
    del parsed  # the backends hold it while a retry may still need it, no longer
    if streaming:
        encoder = OpenAIStreamEncoder(chunk_id=completion_id, model=model,
                                      include_usage=include_usage)
        return await stream_events(request, batches, encoder, ping=PING,
                                   interval=settings.ping_interval, error_frame=error_frame,
                                   headers=dropped)
    message = await collect_events(request, batches)
    response = json_response(openai_responses.completion_body(
        message, completion_id=completion_id, created=int(time.time())), trace=trace)
    response.headers.update(dropped)
    return response


def _parse(body: dict[str, Any], settings: Settings) -> tuple[Request, int]:
    parsed = _with_defaults(parse_request(body, default_model=settings.model), settings)
    return parsed, estimate_input_tokens(parsed)


def _parse_again(raw: bytes, settings: Settings) -> Request:
    """For a retry: the request parsed from its bytes, which is all a request in flight
    keeps until it is committed."""
    return _parse(parse_json_object(raw), settings)[0]


def _with_defaults(request: Request, settings: Settings) -> Request:
    """SYSTEM_PROMPT only where the request brings no system message of its own."""
    has_system = request.system or any(m.role == "system" for m in request.messages)
    if settings.system_prompt and not has_system:
        return replace(request, system=(settings.system_prompt,))
    return request

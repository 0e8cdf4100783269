"""Turning failures into responses in the asking client's own dialect.

The client's dialect is read off the request (its path, or an ``anthropic-version``
header), so even a 404 for an unknown path, or a 401 before any handler ran, comes back
in a shape the client's SDK can parse.
"""

from __future__ import annotations

import orjson
from aiohttp import web

from proxy.dialects.anthropic import responses as anthropic_responses
from proxy.dialects.openai import responses as openai_responses
from proxy.errors import InvalidRequest, NotFound, ProxyError
from proxy.keys import TRACE_KEY

ANTHROPIC = "anthropic"
OPENAI = "openai"


class UnknownPath(NotFound):
    """No route has this path. Anthropic calls it ``not_found_error``; OpenAI answers an
    unknown URL as an ``invalid_request_error`` with no code, never ``model_not_found``."""


def client_dialect(request: web.Request) -> str:
    path = request.path
    if path.startswith("/v1/messages") or "anthropic-version" in request.headers:
        return ANTHROPIC
    return OPENAI


def error_response(request: web.Request, error: ProxyError) -> web.Response:
    trace = request.get(TRACE_KEY)
    request_id = trace.request_id if trace else None
    if client_dialect(request) == ANTHROPIC:
        body = anthropic_responses.error_body(error.kind, error.message, request_id)
        # Anthropic's overload status (529) is the one Claude Code backs off on.
        status = error.status
    else:
        param = error.param if isinstance(error, InvalidRequest) else None
        kind = "invalid_request" if isinstance(error, UnknownPath) else error.kind
        body = openai_responses.error_body(kind, error.message, param)
        status = 503 if error.status == 529 else error.status
    response = web.Response(status=status, body=orjson.dumps(body),
                            content_type="application/json")
    if error.retry_after:
        response.headers["retry-after"] = error.retry_after
    # Tell the SDKs not to retry what cannot succeed on a retry.
    retryable = status in (408, 429) or status >= 500
    response.headers["x-should-retry"] = "true" if retryable else "false"
    return response


def from_http_exception(exc: web.HTTPException) -> ProxyError:
    """aiohttp's own refusals (unknown path, wrong method, body too large) as ProxyErrors."""
    if exc.status == 404:
        return UnknownPath("Not found: this proxy serves /v1/messages, "
                           "/v1/messages/count_tokens, /v1/chat/completions (also under "
                           "/api/v1), /v1/models (also under /api/v1), /health and /metrics.")
    if exc.status == 405:
        return ProxyError(f"Method not allowed: {exc.reason}.", status=405,
                          kind="invalid_request")
    if exc.status == 413:
        return ProxyError("The request body is too large for this proxy (MAX_BODY_BYTES).",
                          status=413, kind="request_too_large")
    kind = "invalid_request" if exc.status < 500 else "api_error"
    return ProxyError(exc.reason or "HTTP error", status=exc.status, kind=kind)

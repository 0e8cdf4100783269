"""Middlewares: request id and access log, inbound auth, and exceptions -> responses.

The error middleware is the only place an exception becomes an HTTP error; anything it
does not know is logged with its traceback here and answered as a plain 500 in the
client's dialect, so no traceback ever reaches a client. Nothing here logs a header or a
body, so no key reaches a log.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from proxy.edge.errors import client_dialect, error_response, from_http_exception
from proxy.errors import AuthenticationFailed, ProxyError
from proxy.keys import (
    MODEL_KEY,
    REQUEST_ID_KEY,
    SETTINGS_KEY,
    STARTED_KEY,
    STOP_REASON_KEY,
    TTFB_MS_KEY,
    USAGE_KEY,
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
access_log = logging.getLogger("proxy.access")
log = logging.getLogger("proxy")
OPEN_PATHS = frozenset({"/", "/health"})


def client_key(request: web.Request) -> str | None:
    """The credential the client sent: ``x-api-key`` or ``Authorization: Bearer``."""
    key = request.headers.get("x-api-key")
    if key:
        return key
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    return None


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Request id, timing and the access line; innermost middlewares run inside it."""
    request_id = request.headers.get("x-request-id") or f"req_{secrets.token_hex(12)}"
    request[REQUEST_ID_KEY] = request_id
    request[STARTED_KEY] = started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    except asyncio.CancelledError:
        status = 499  # the client went away (nginx's word for it)
        raise
    finally:
        total = (time.perf_counter() - started) * 1000
        ttfb = request.get(TTFB_MS_KEY)
        access_log.info(
            "%s %s %s %s dialect=%s model=%s ttfb_ms=%s total_ms=%.1f stop=%s usage=%s",
            request_id, request.method, request.path, status, client_dialect(request),
            request.get(MODEL_KEY, "-"), f"{ttfb:.1f}" if ttfb is not None else "-", total,
            request.get(STOP_REASON_KEY, "-"), request.get(USAGE_KEY, "-"))


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except ProxyError as exc:
        return _with_id(request, error_response(request, exc))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _with_id(request, error_response(request, from_http_exception(exc)))
    except Exception:
        log.exception("unexpected failure in %s %s", request.method, request.path)
        failure = ProxyError("The proxy failed unexpectedly; see its log.", status=500)
        return _with_id(request, error_response(request, failure))
    if not response.prepared:
        _with_id(request, response)
    return response


@web.middleware
async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    expected = request.app[SETTINGS_KEY].proxy_api_key
    if expected and request.path not in OPEN_PATHS:
        given = client_key(request) or ""
        # Constant time, so the key cannot be guessed a byte at a time.
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise AuthenticationFailed("Invalid or missing API key for this proxy: send it "
                                       "as x-api-key or Authorization: Bearer.")
    return await handler(request)


def _with_id(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
    request_id = request.get(REQUEST_ID_KEY, "")
    response.headers["x-request-id"] = request_id
    if client_dialect(request) == "anthropic":
        response.headers["request-id"] = request_id
    return response

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
import re
import secrets
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from proxy.edge.errors import client_dialect, error_response, from_http_exception
from proxy.errors import AuthenticationFailed, ProxyError
from proxy.keys import OBSERVERS_KEY, SETTINGS_KEY, TRACE_KEY
from proxy.observe.logs import body_log
from proxy.observe.trace import Trace

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
log = logging.getLogger("proxy")
OPEN_PATHS = frozenset({"/", "/health"})
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")  # a client's own id, if it is a sane one


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
    """The request's trace: id and timing in, then the access line, the metrics and the
    session log out. The other middlewares run inside it."""
    given = request.headers.get("x-request-id", "")
    request_id = given if _REQUEST_ID.fullmatch(given) else f"req_{secrets.token_hex(12)}"
    trace = Trace(request_id=request_id, method=request.method, path=request.path,
                  dialect=client_dialect(request))
    request[TRACE_KEY] = trace
    observers = request.app[OBSERVERS_KEY]
    if observers.session_log is not None or body_log.isEnabledFor(logging.DEBUG):
        trace.recording = bytearray()
    try:
        response = await handler(request)
        trace.status = response.status
        return response
    except web.HTTPException as exc:
        trace.status = exc.status
        raise
    except asyncio.CancelledError:
        if not trace.finished:
            trace.status = 499  # the client went away (nginx's word for it)
        raise
    finally:
        trace.total_ms = (time.perf_counter() - trace.started) * 1000
        resource = request.match_info.route.resource
        if resource is not None:
            trace.route = resource.canonical
        observers.done(trace)


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
    trace = request[TRACE_KEY]
    request_id = trace.request_id
    response.headers["x-request-id"] = request_id
    response.headers.update(trace.timing_headers())
    if client_dialect(request) == "anthropic":
        response.headers["request-id"] = request_id
    return response

"""Middlewares: request id and access log, inbound auth, and exceptions -> responses.

The error middleware is the only place an exception becomes an HTTP error; anything it
does not know is logged with its traceback here and answered as a plain 500 in the
client's dialect, so no traceback ever reaches a client. Nothing here logs a header or a
body, so no key reaches a log.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from proxy.edge.errors import client_dialect, error_response, from_http_exception
from proxy.errors import AuthenticationFailed, Forbidden, ProxyError
from proxy.keys import CALLER_KEY, INBOUND_KEY, OBSERVERS_KEY, TRACE_KEY
from proxy.observe.logs import body_log
from proxy.observe.trace import Trace
from proxy.routing import Plan

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
log = logging.getLogger("proxy")
OPEN_PATHS = frozenset({"/", "/health"})
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")  # a client's own id, if it is a sane one
_KEY = re.compile(r"[\x21-\x7e]+")


def client_key(request: web.Request) -> str | None:
    """The credential the client sent: ``x-api-key`` or ``Authorization: Bearer``.

    A key is printable ASCII. Anything else (header bytes that are not UTF-8 reach us as
    lone surrogates) is a key neither this proxy nor any upstream could take: a 401 here,
    not a crash in the compare below or in the upstream request that would carry it."""
    key = request.headers.get("x-api-key")
    if not key:
        auth = request.headers.get("authorization", "")
        key = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
    if not key:
        return None
    if not _KEY.fullmatch(key):
        raise AuthenticationFailed("The API key is malformed: it must be printable ASCII, "
                                   "sent as x-api-key or Authorization: Bearer.")
    return key


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
    """Who is calling: one of the inbound keys (``ak``, a providers file's ``keys``), each
    compared in constant time; then that key's rate window, before any upstream call.
    Open when no key is configured; ``/`` and ``/health`` are always open."""
    inbound = request.app[INBOUND_KEY]
    if not inbound or request.path in OPEN_PATHS:
        return await handler(request)
    caller = inbound.identify((client_key(request) or "").encode())
    if caller is None:
        raise AuthenticationFailed("Invalid or missing API key for this proxy: send it "
                                   "as x-api-key or Authorization: Bearer.")
    if request.path.startswith("/debug/") and not inbound.may_debug(caller):
        raise Forbidden("Only the proxy's own key (ak, PROXY_API_KEY) may use /debug/.")
    request[CALLER_KEY] = caller
    trace = request[TRACE_KEY]
    trace.key_name = caller.name
    await inbound.admit(caller)
    try:
        return await handler(request)
    finally:
        if trace.usage is not None:
            usage = trace.usage
            await inbound.charge(caller, usage.input_tokens + usage.cache_read_input_tokens
                                 + usage.output_tokens)


def check_caller(request: web.Request, asked: str, plan: Plan) -> None:
    """A 403 unless the request's inbound key may use the model it asked for (by the
    name asked, or the configured id it routes to)."""
    caller = request.get(CALLER_KEY)
    if caller is not None:
        request.app[INBOUND_KEY].check_model(caller, asked, plan.first.label)


def _with_id(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
    trace = request[TRACE_KEY]
    request_id = trace.request_id
    response.headers["x-request-id"] = request_id
    response.headers.update(trace.timing_headers())
    if client_dialect(request) == "anthropic":
        response.headers["request-id"] = request_id
    return response

"""What the two translated handlers (``messages`` and ``chat``) hand a backend and add to
their answer alike: the ``Call`` for one request and the dropped-fields header."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from proxy.backends.base import Call
from proxy.backends.headers import from_client
from proxy.edge.middleware import client_key
from proxy.keys import OBSERVERS_KEY, TRACE_KEY

DROPPED_HEADER = "x-llm-proxy-dropped"  # request fields left out on purpose, comma-separated


def backend_call(request: web.Request, message_id: str, model: str, estimate: int,
                 body_size: int) -> Call:
    """The request's own facts a backend may need, beside the parsed request."""
    return Call(message_id=message_id, client_model=model, input_tokens=estimate,
                client_key=client_key(request),
                client_headers=from_client(request.headers.items()), body_size=body_size,
                record=_recorder(request))


def dropped_headers(request: web.Request, names: tuple[str, ...]) -> dict[str, str]:
    """The header naming what was left out (on every translated answer, even empty), also
    noted on the request's trace for the access log."""
    joined = ",".join(names)
    request[TRACE_KEY].dropped = joined or "-"
    return {DROPPED_HEADER: joined}


def _recorder(request: web.Request) -> Callable[[bytes], None] | None:
    """Where a backend's raw lines go, when a session log wants them."""
    wanted = request.app[OBSERVERS_KEY].session_log is not None
    return request[TRACE_KEY].record_upstream if wanted else None

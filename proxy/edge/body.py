"""Reading a client's JSON body: within MAX_BODY_BYTES, parsed once, raw bytes kept for
the same-dialect relay; and the one refusal every handler shares, "no upstream set"."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from proxy.config import Settings
from proxy.dialects.fields import parse_json_object
from proxy.errors import NotConfigured, RequestTooLarge
from proxy.keys import OBSERVERS_KEY, SETTINGS_KEY, TRACE_KEY
from proxy.observe.trace import Trace


async def read_body(request: web.Request) -> tuple[bytes, dict[str, Any]]:
    limit = request.app[SETTINGS_KEY].max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise RequestTooLarge(f"The request body is {request.content_length} bytes; this "
                              f"proxy accepts at most {limit} (MAX_BODY_BYTES).")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise RequestTooLarge(f"The request body is larger than {limit} bytes "
                              "(MAX_BODY_BYTES).") from None
    request.app[OBSERVERS_KEY].request_body(request[TRACE_KEY], raw)
    return raw, parse_json_object(raw)


def require_upstream(settings: Settings) -> None:
    if not settings.upstream_configured:
        raise NotConfigured("llm-dialect-proxy has no upstream configured: start it with "
                            "--upstream URL (or set UPSTREAM_URL), e.g. "
                            "https://api.deepseek.com/v1.")


def with_model(raw: bytes, body: dict[str, Any], model: str) -> bytes:
    """The body for a relay: the same bytes, unless the model name must change."""
    if body.get("model") == model:
        return raw
    return orjson.dumps({**body, "model": model})


def json_response(body: dict[str, Any], status: int = 200,
                  trace: Trace | None = None) -> web.Response:
    raw = orjson.dumps(body)
    if trace is not None:
        trace.record(raw)
    return web.Response(status=status, body=raw, content_type="application/json")

"""Reading a client's JSON body safely: within BODY_READ_TIMEOUT and MAX_BODY_BYTES
(counted after inflating a gzip or deflate body, and inflated only that far), parsed off
the event loop when it is large, raw bytes kept for the same-dialect relay; and the one
refusal every handler shares, "no upstream set".

aiohttp's own decompression is turned off (``server_options`` in ``proxy.app``): it
inflates as bytes arrive, on the event loop and without a bound, so 2 MB of gzip could
stall every other request while it grew to gigabytes.
"""

from __future__ import annotations

import asyncio
import re
import zlib
from typing import Any

import orjson
from aiohttp import web

from proxy.canonical import Request
from proxy.config import Settings
from proxy.dialects.fields import parse_json_object
from proxy.errors import (
    InvalidRequest,
    NotConfigured,
    RequestTimeout,
    RequestTooLarge,
    UnsupportedEncoding,
)
from proxy.keys import OBSERVERS_KEY, SETTINGS_KEY, TRACE_KEY
from proxy.observe.trace import Trace
from proxy.offload import off_loop

_WS = rb"[ \t\n\r]*"  # JSON's whitespace: \s would take \v and \f as well
_LEADING_MODEL = re.compile(_WS + rb'\{' + _WS + rb'"model"' + _WS + rb':' + _WS
                            + rb'("(?:[^"\\]|\\.)*")')
_MODEL_KEY = re.compile(  # a key "model" in any case, escapes too, with a value but an object
    rb'"(?:m|\\u00[46]d)(?:o|\\u00[46]f)(?:d|\\u00[46]4)(?:e|\\u00[46]5)(?:l|\\u00[46]c)"\s*:\s*[^\s{]',
    re.IGNORECASE)
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


async def read_body(request: web.Request) -> tuple[bytes, dict[str, Any]]:
    raw = await read_raw(request)
    return raw, await parse_body(raw)


async def parse_body(raw: bytes) -> dict[str, Any]:
    return await off_loop(len(raw), parse_json_object, raw)


def body_model(body: dict[str, Any]) -> str:
    """The parsed body's model, or "" when it names none (or not as a string)."""
    model = body.get("model")
    return model if isinstance(model, str) else ""


def peek_model(raw: bytes) -> str | None:
    """The body's model when it is its first key and no later key may name another
    (``_names_model_again``), read without parsing the rest: all a same-dialect relay
    needs. None otherwise: then parse it all."""
    match = _LEADING_MODEL.match(raw)
    if match is None or _names_model_again(raw, match.end()):
        return None
    try:
        model = orjson.loads(match.group(1))
    except orjson.JSONDecodeError:
        return None
    return model if type(model) is str else None


def _names_model_again(raw: bytes, start: int) -> bool:
    """Whether a key after ``start`` may be "model" with a value an upstream could read
    as a model name (JSON parsers keep a duplicate key's last value, so the upstream would
    go by it, not by the first; Go's encoding/json takes "Model" or "MODEL" as well).
    One whose value is an object, like the ``model`` parameter in the schema of Claude
    Code's Task tool, names none, nested or not (no upstream takes an object for a
    model): any other value does, in any letter case, with any letter written as a
    ``\\u`` escape. One search: about 40 us on a 73 KB Claude Code body."""
    return _MODEL_KEY.search(raw, start) is not None


def names_model_twice(raw: bytes) -> bool:
    """Whether more than one key may name a model (``_names_model_again``), anywhere in
    the body: parsers that keep the first of duplicate keys (gjson, simdjson) and those
    that keep the last (orjson, Go's encoding/json) may then read different models."""
    first = _MODEL_KEY.search(raw)
    return first is not None and _names_model_again(raw, first.end())


def refuse_other_model_keys(body: dict[str, Any]) -> None:
    """A 400 when the body has a key "model" in another letter case ("Model"): the proxy
    routes by "model", an upstream in Go could go by the other."""
    for key in body:
        if key != "model" and key.lower() == "model":
            raise InvalidRequest(f"The body names a model with the key {key!r}: send it as "
                                 "\"model\", once.", param=key)


async def read_raw(request: web.Request) -> bytes:
    """The body's bytes: within MAX_BODY_BYTES and BODY_READ_TIMEOUT, inflated if sent
    compressed, and noted for the DEBUG log and the session log."""
    settings = request.app[SETTINGS_KEY]
    limit = settings.max_body_bytes
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity", *_WBITS):
        raise UnsupportedEncoding(f"Content-Encoding {encoding!r} is not accepted; send the "
                                  "body plain, gzip or deflate.")
    if request.content_length is not None and request.content_length > limit:
        raise RequestTooLarge(f"The request body is {request.content_length} bytes; this "
                              f"proxy accepts at most {limit} (MAX_BODY_BYTES).")
    raw = await _read(request, settings)
    if encoding in _WBITS:
        raw = await off_loop(len(raw), inflate, raw, encoding, limit)
    request.app[OBSERVERS_KEY].request_body(request[TRACE_KEY], raw)
    return raw


async def _read(request: web.Request, settings: Settings) -> bytes:
    """The body, read from the connection ourselves rather than with ``request.read()``,
    which would keep a copy on the request for as long as the request lives (a stream's
    whole life): this one is gone once it is parsed."""
    limit = settings.max_body_bytes
    body = bytearray()
    try:
        async with asyncio.timeout(settings.body_read_timeout):
            while piece := await request.content.readany():
                body += piece
                if len(body) > limit:
                    raise RequestTooLarge(f"The request body is larger than {limit} bytes "
                                          "(MAX_BODY_BYTES).")
            return bytes(body)
    except TimeoutError:
        raise RequestTimeout(f"The request body did not arrive within "
                             f"{settings.body_read_timeout:g} s (BODY_READ_TIMEOUT).") from None


def inflate(data: bytes, encoding: str, limit: int) -> bytes:
    """A gzip or deflate body, inflated no further than ``limit`` bytes. A gzip body may
    hold several members, one after another (RFC 1952): all of them count."""
    out = bytearray()
    while True:
        inflater = zlib.decompressobj(_WBITS[encoding])
        try:
            out += inflater.decompress(data, limit + 1 - len(out))
            if len(out) <= limit and not inflater.unconsumed_tail:
                out += inflater.flush()
        except zlib.error:
            if encoding == "deflate" and not out:  # some clients omit zlib's header
                return inflate_raw_deflate(data, limit)
            raise InvalidRequest(f"The request body is not valid {encoding}.") from None
        if len(out) > limit or inflater.unconsumed_tail:
            raise RequestTooLarge(f"The request body inflates to more than {limit} bytes "
                                  "(MAX_BODY_BYTES).")
        if not inflater.eof:
            raise InvalidRequest(f"The {encoding} request body is cut short.")
        data = inflater.unused_data
        if not data or encoding == "deflate":
            return bytes(out)


def inflate_raw_deflate(data: bytes, limit: int) -> bytes:
    try:
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        out = inflater.decompress(data, limit + 1)
    except zlib.error:
        raise InvalidRequest("The request body is not valid deflate.") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise RequestTooLarge(f"The request body inflates to more than {limit} bytes "
                              "(MAX_BODY_BYTES).")
    return out


class Handover:
    """A parsed request and its bytes, handed from a handler to the code that answers it.
    The handler's own frame lives as long as the stream it awaits; holding them here, to
    be taken once, lets them go as soon as the upstream call is made, not at the end."""

    __slots__ = ("_parsed", "_raw")

    def __init__(self, parsed: Request, raw: bytes) -> None:
        self._parsed: Request | None = parsed
        self._raw: bytes | None = raw

    def take(self) -> tuple[Request, bytes]:
        parsed, raw = self._parsed, self._raw
        assert parsed is not None and raw is not None, "handed over twice"
        self._parsed = self._raw = None
        return parsed, raw


def require_upstream(settings: Settings) -> None:
    if not settings.upstream_configured:
        raise NotConfigured("llm-dialect-proxy has no upstream configured: start it with "
                            "--upstream URL (or set UPSTREAM_URL), e.g. "
                            "https://api.deepseek.com/v1.")


def json_response(body: dict[str, Any], status: int = 200,
                  trace: Trace | None = None) -> web.Response:
    raw = orjson.dumps(body)
    if trace is not None:
        trace.record(raw)
    return web.Response(status=status, body=raw, content_type="application/json")

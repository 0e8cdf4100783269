"""Writing a same-dialect relay's answer: the upstream's bytes go back as they arrive.

The attempts, keys and failover live with the backends (``backends/relay.py``); this is
the edge's half, like the copy loop of Go's ReverseProxy: the upstream's status, headers
(hop-by-hop ones dropped, ``backends/headers.py``) and body are kept, every read is
written (and so flushed) at once, and a client that goes away cancels the handler, which
closes the upstream request. A refusal's body was read whole and had every secret masked;
a success is passed through byte for byte. Nothing is decoded on the way: the access log
still learns the usage and stop reason from the first and last reads of the body.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web

from proxy.backends.base import RelayRequest
from proxy.backends.headers import from_client, from_upstream
from proxy.backends.http_common import upstream_failures
from proxy.backends.relay import Exhausted, Refusal
from proxy.canonical import Usage
from proxy.edge.body import names_model_twice, refuse_other_model_keys
from proxy.edge.middleware import client_key
from proxy.edge.streaming import CoalescingResponse
from proxy.errors import UpstreamError
from proxy.keys import OBSERVERS_KEY, TRACE_KEY, UPSTREAMS_KEY
from proxy.routing import Plan

log = logging.getLogger("proxy.relay")
HEAD_BYTES = 4096
TAIL_READS = 4
_NUMBERS = {name: re.compile(rb'"' + name.encode() + rb'"\s*:\s*(\d+)') for name in (
    "input_tokens", "output_tokens", "cache_read_input_tokens", "prompt_tokens",
    "completion_tokens", "cached_tokens")}
_STOP = re.compile(rb'"(?:stop_reason|finish_reason)"\s*:\s*"(\w+)"')

Fallback = Callable[[], Awaitable[web.StreamResponse]]  # the translated path, to go on with
ErrorFrame = Callable[[str, str], bytes]


def relay_request(request: web.Request, raw: bytes, model: str,
                  parsed: dict[str, Any] | None, path: str = "") -> RelayRequest:
    ambiguous = False
    if parsed is not None:  # a peeked model was checked for both already
        refuse_other_model_keys(parsed)
        ambiguous = names_model_twice(raw)
    return RelayRequest(raw=raw, model=model, parsed=parsed, path=path, ambiguous=ambiguous,
                        headers=from_client(request.headers.items()),
                        query=request.query_string)


async def relay(request: web.Request, relayed: RelayRequest, plan: Plan,
                error_frame: ErrorFrame, then: Fallback | None = None) -> web.StreamResponse:
    """Relay to the first attempt that answers. When they are all spent, ``then``
    (fallbacks of the other dialect, translated) takes over, or else the last refusal
    is relayed as the upstream sent it."""
    upstreams, trace = request.app[UPSTREAMS_KEY], request[TRACE_KEY]
    async with contextlib.AsyncExitStack() as stack:
        try:
            answer = await upstreams.relay(relayed, plan, client_key(request), trace, stack)
        except Exhausted as spent:
            if then is not None:
                return await then()
            if spent.refusal is None:
                raise spent.failure from None
            answer = spent.refusal
        if isinstance(answer, Refusal):
            return _refusal_response(answer)
        return await _relay_answer(request, answer, error_frame)


def _refusal_response(refusal: Refusal) -> web.Response:
    response = web.Response(status=refusal.status, reason=refusal.reason, body=refusal.body)
    for name, value in refusal.headers:
        response.headers.add(name, value)
    return response


async def _relay_answer(request: web.Request, upstream: aiohttp.ClientResponse,
                        error_frame: ErrorFrame) -> web.StreamResponse:
    trace = request[TRACE_KEY]
    response = CoalescingResponse(status=upstream.status, reason=upstream.reason)
    for name, value in from_upstream(upstream.headers.items()):
        response.headers.add(name, value)
    response.headers["x-request-id"] = trace.request_id
    response.headers.update(trace.timing_headers())
    if upstream.content_length is not None and "content-encoding" not in upstream.headers:
        response.content_length = upstream.content_length
    await response.prepare(request)
    trace.ttfb_ms = (time.perf_counter() - trace.started) * 1000
    trace.streamed = upstream.content_type == "text/event-stream"
    await _pump(request, upstream, response, error_frame)
    return response


async def _pump(request: web.Request, upstream: aiohttp.ClientResponse,
                response: web.StreamResponse, error_frame: ErrorFrame) -> None:
    head, tail = bytearray(), []
    trace = request[TRACE_KEY]
    active = request.app[OBSERVERS_KEY].metrics.active_streams
    active.inc()
    try:
        with upstream_failures():
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
                if trace.recording is not None:
                    trace.record(chunk)
                if len(head) < HEAD_BYTES:
                    head += chunk
                tail.append(chunk)
                if len(tail) > TAIL_READS:
                    del tail[0]
    except UpstreamError as exc:
        _note(request, bytes(head), b"".join(tail), upstream.status)
        if request.transport is None or request.transport.is_closing():
            log.info("%s: client went away mid-relay", trace.request_id)
            return  # the write failed, not the upstream
        trace.errors.append("api_error")
        await _fail(request, upstream, response, error_frame, exc)
        return
    finally:
        active.dec()
    await response.write_eof()
    trace.status, trace.finished = response.status, True
    _note(request, bytes(head), b"".join(tail), upstream.status)  # the client is done


async def _fail(request: web.Request, upstream: aiohttp.ClientResponse,
                response: web.StreamResponse, error_frame: ErrorFrame,
                exc: UpstreamError) -> None:
    """The upstream broke mid-body. An event stream gets the dialect's error frame; any
    other body is cut off, so the client sees an incomplete answer, never a whole one."""
    log.warning("%s: relay broke mid-body: %s", request[TRACE_KEY].request_id, exc.message)
    request[TRACE_KEY].stop_reason = "error"
    if upstream.content_type == "text/event-stream":
        try:
            await response.write(error_frame("api_error", "The upstream connection broke."))
            await response.write_eof()
        except ConnectionError:
            pass
        return
    if request.transport is not None:
        request.transport.close()


def _note(request: web.Request, head: bytes, tail: bytes, status: int) -> None:
    """Usage and stop reason for the access line, read off the body's two ends. Only the
    few hundred bytes after the first ``"usage"`` of the head (Anthropic's message_start:
    input tokens) and the last of the tail (message_delta, OpenAI's usage chunk, a JSON
    body) are searched, so a long body costs two searches, not a scan."""
    found = _numbers(_after(head, b'"usage"', first=True))
    found.update((k, v) for k, v in _numbers(_after(tail, b'"usage"')).items() if v)
    if found:
        inputs = found.get("input_tokens", found.get("prompt_tokens", 0))
        cached = found.get("cache_read_input_tokens", found.get("cached_tokens", 0))
        outputs = found.get("output_tokens", found.get("completion_tokens", 0))
        request[TRACE_KEY].usage = Usage(input_tokens=inputs, output_tokens=outputs,
                                         cache_read_input_tokens=cached)
    stop = _STOP.findall(_after(tail, b'"stop_reason"') or _after(tail, b'"finish_reason"'))
    if stop:
        request[TRACE_KEY].stop_reason = stop[-1].decode()
    if status >= 400 or b'"error"' in tail:
        masker = request.app[OBSERVERS_KEY].masker
        log.warning("%s: upstream error relayed (HTTP %s): %s", request[TRACE_KEY].request_id,
                    status, masker(tail[-500:].decode("utf-8", "replace"),
                                   (client_key(request),)))


def _after(data: bytes, marker: bytes, span: int = 400, first: bool = False) -> bytes:
    at = data.find(marker) if first else data.rfind(marker)
    return data[at:at + span] if at >= 0 else b""


def _numbers(window: bytes) -> dict[str, int]:
    return {name: int(m[0]) for name, rx in _NUMBERS.items() if (m := rx.findall(window))}

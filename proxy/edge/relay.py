"""The same-dialect fast path: the client's request goes up as it came (the model name
changed only when it must be), and the upstream's bytes come back as they arrive.

Like Go's ReverseProxy: hop-by-hop headers are dropped both ways, the upstream's status,
headers and error bodies are kept, every read is written (and so flushed) at once, and a
client that goes away cancels the handler, which closes the upstream request. Nothing is
decoded on the way; the access log still learns the usage and stop reason from the first
and last reads of the body.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web

from proxy.backends.failover import KEY_FAILURES, Attempts
from proxy.backends.http_common import redact, status_error, upstream_failures
from proxy.canonical import Usage
from proxy.edge.streaming import CoalescingResponse
from proxy.errors import UpstreamError, UpstreamUnreachable
from proxy.keys import OBSERVERS_KEY, TRACE_KEY
from proxy.observe.trace import OVERHEAD_HEADER
from proxy.routing import Route

log = logging.getLogger("proxy.relay")
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "trailers", "transfer-encoding", "upgrade", "host", "content-length",
})
# Never relayed as the client sent them: credentials are ours to set, and the body must
# come back uncompressed to be relayed byte for byte.
CLIENT_ONLY = frozenset({"authorization", "x-api-key", "accept-encoding", "content-encoding"})
HEAD_BYTES = 4096
TAIL_READS = 4
_NUMBERS = {name: re.compile(rb'"' + name.encode() + rb'"\s*:\s*(\d+)') for name in (
    "input_tokens", "output_tokens", "cache_read_input_tokens", "prompt_tokens",
    "completion_tokens", "cached_tokens")}
_STOP = re.compile(rb'"(?:stop_reason|finish_reason)"\s*:\s*"(\w+)"')


def forwarded_headers(request: web.Request) -> dict[str, str]:
    """The client's end-to-end headers (lower-cased), minus what the relay must set."""
    return {k.lower(): v for k, v in request.headers.items()
            if k.lower() not in HOP_BY_HOP and k.lower() not in CLIENT_ONLY}


Fallback = Callable[[], Awaitable[web.StreamResponse]]  # the translated path, to go on with
Secrets = tuple[str | None, ...]  # what must never reach a log or the client
Target = tuple[aiohttp.ClientSession, str, dict[str, str], bytes]  # session, url, headers, body


async def relay(request: web.Request, attempts: Attempts,
                target: Callable[[Route, str | None], Target],
                error_frame: Callable[[str, str], bytes],
                then: Fallback | None = None) -> web.StreamResponse:
    """Relay to the first attempt that answers. Before any byte went out, a refused key or
    an overloaded upstream moves on to the next key or fallback (``Attempts``); when they
    are all spent, ``then`` (fallbacks of the other dialect, translated) takes over, or
    else the last refusal is relayed as the upstream sent it."""
    refusal: web.Response | None = None
    failure: UpstreamError | None = None
    while (attempt := attempts.next()) is not None:
        route, key = attempt
        session, url, headers, body = target(route, key)
        async with contextlib.AsyncExitStack() as stack:
            try:
                with upstream_failures():
                    upstream = await stack.enter_async_context(session.post(
                        url, data=body, headers={**headers, "accept-encoding": "identity"},
                        allow_redirects=False))  # a redirect would carry the key elsewhere
                    if 300 <= upstream.status < 400:
                        raise await status_error(upstream, (*route.provider.keys, key))
            except UpstreamError as error:
                failure = error
                if attempts.failed(error):
                    continue
                raise
            secrets = (*route.provider.keys, key)
            if upstream.status in KEY_FAILURES:
                refusal, refused = await _refusal(upstream, secrets)
                if attempts.failed(refused):
                    continue
                return refusal
            attempts.succeeded()
            return await _relay_answer(request, upstream, secrets, error_frame)
    if then is not None:
        return await then()
    if refusal is not None:
        return refusal
    raise failure or UpstreamUnreachable("No upstream could take this request.")


async def _relay_answer(request: web.Request, upstream: aiohttp.ClientResponse,
                        secrets: Secrets,
                        error_frame: Callable[[str, str], bytes]) -> web.StreamResponse:
    trace = request[TRACE_KEY]
    response = CoalescingResponse(status=upstream.status, reason=upstream.reason)
    _copy_headers(upstream, response)
    response.headers["x-request-id"] = trace.request_id
    response.headers[OVERHEAD_HEADER] = f"{trace.overhead_ms():.2f}"
    if upstream.content_length is not None and "content-encoding" not in upstream.headers:
        response.content_length = upstream.content_length
    await response.prepare(request)
    trace.ttfb_ms = (time.perf_counter() - trace.started) * 1000
    trace.streamed = upstream.content_type == "text/event-stream"
    await _pump(request, upstream, response, secrets, error_frame)
    return response


async def _refusal(upstream: aiohttp.ClientResponse,
                   secrets: Secrets) -> tuple[web.Response, UpstreamError]:
    """A retryable refusal, read whole: kept to relay as is if nothing else answers."""
    error = await status_error(upstream, secrets)
    response = web.Response(status=upstream.status, reason=upstream.reason,
                            body=redact(error.raw.decode("utf-8", "replace"), secrets).encode())
    _copy_headers(upstream, response)
    return response, error


def _copy_headers(upstream: aiohttp.ClientResponse, response: web.StreamResponse) -> None:
    # aiohttp has already undone any content-encoding: the bytes we relay are plain.
    for name, value in upstream.headers.items():
        if name.lower() not in HOP_BY_HOP and name.lower() != "content-encoding":
            response.headers.add(name, value)


async def _pump(request: web.Request, upstream: aiohttp.ClientResponse,
                response: web.StreamResponse, secrets: Secrets,
                error_frame: Callable[[str, str], bytes]) -> None:
    head, tail = bytearray(), []
    trace = request[TRACE_KEY]
    active = request.app[OBSERVERS_KEY].metrics.active_streams
    active.inc()
    try:
        async for chunk in upstream.content.iter_any():
            await response.write(chunk)
            if trace.recording is not None:
                trace.record(chunk)
            if len(head) < HEAD_BYTES:
                head += chunk
            tail.append(chunk)
            if len(tail) > TAIL_READS:
                del tail[0]
    except (aiohttp.ClientError, TimeoutError) as exc:
        _note(request, bytes(head), b"".join(tail), upstream.status, secrets)
        trace.errors.append("api_error")
        await _fail(request, upstream, response, error_frame, exc)
        return
    finally:
        active.dec()
    await response.write_eof()
    trace.status, trace.finished = response.status, True
    _note(request, bytes(head), b"".join(tail), upstream.status, secrets)  # client is done


async def _fail(request: web.Request, upstream: aiohttp.ClientResponse,
                response: web.StreamResponse, error_frame: Callable[[str, str], bytes],
                exc: BaseException) -> None:
    """The upstream broke mid-body. An event stream gets the dialect's error frame; any
    other body is cut off, so the client sees an incomplete answer, never a whole one."""
    log.warning("%s: relay broke mid-body: %s", request[TRACE_KEY].request_id, exc)
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


def _note(request: web.Request, head: bytes, tail: bytes, status: int,
          secrets: Secrets) -> None:
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
        log.warning("%s: upstream error relayed (HTTP %s): %s", request[TRACE_KEY].request_id,
                    status, redact(tail[-500:].decode("utf-8", "replace"), secrets))


def _after(data: bytes, marker: bytes, span: int = 400, first: bool = False) -> bytes:
    at = data.find(marker) if first else data.rfind(marker)
    return data[at:at + span] if at >= 0 else b""


def _numbers(window: bytes) -> dict[str, int]:
    return {name: int(m[0]) for name, rx in _NUMBERS.items() if (m := rx.findall(window))}

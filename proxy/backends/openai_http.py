"""An OpenAI-compatible HTTP upstream (vLLM, DeepSeek, GLM, OpenRouter, OpenAI itself).

Renders the canonical request as a streaming Chat Completions call over the process's
shared ClientSession, feeds the response bytes through the SSE decoder and the OpenAI
stream decoder, and yields canonical event batches as they complete. aiohttp's failures
become ``proxy.errors`` here and nowhere else. The response is held in ``async with``, so
a client that goes away (the handler is cancelled) closes the upstream request at once.

A 400 that says what the model cannot take (too many output tokens, an unsupported
field) is mended and retried once, before the client has seen a byte, and remembered for
that model (``proxy.dialects.openai.limits``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson

from proxy import __version__
from proxy.backends.base import Call
from proxy.canonical import Event, Request
from proxy.config import Settings
from proxy.dialects.openai.limits import Learned, learn_from_refusal
from proxy.dialects.openai.request_render import RenderOptions, render_request
from proxy.dialects.openai.stream_decode import OpenAIStreamDecoder
from proxy.errors import (
    UpstreamError,
    UpstreamProtocolError,
    UpstreamStatusError,
    UpstreamTimeout,
    UpstreamUnreachable,
    status_for_upstream,
)
from proxy.sse import SSEDecoder

log = logging.getLogger("proxy.upstream")
ERROR_BODY_LIMIT = 64 * 1024
TAIL_WAIT = 1.0  # seconds to read the last bytes ([DONE]) so the connection can be reused
FINISH_GRACE = 5.0  # seconds to wait for usage/[DONE] once the model said it finished


class OpenAIBackend:
    def __init__(self, session: aiohttp.ClientSession, settings: Settings) -> None:
        self._session = session
        self._settings = settings
        self._url = settings.chat_completions_url
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=settings.connect_timeout,
                                              sock_read=settings.read_timeout)
        self._grace = min(FINISH_GRACE, settings.read_timeout)
        self._learned: dict[str, Learned] = {}  # upstream model -> what it refused before

    async def stream(self, request: Request, call: Call) -> AsyncIterator[list[Event]]:
        rendered = render_request(request, self._render_options(request))
        decoder = OpenAIStreamDecoder(message_id=call.message_id, model=call.client_model,
                                      input_tokens=call.input_tokens,
                                      tool_names=rendered.tool_names)
        try:
            async with contextlib.AsyncExitStack() as stack:
                response = await self._post(stack, rendered.body, self._headers(call))
                if response.content_type == "application/json":  # stream=true was ignored
                    yield decoder.feed_completion(_json_object(await response.read()))
                    return
                # One loop, no nested generator: this runs once per upstream read.
                sse, content = SSEDecoder(), response.content
                while chunk := await _next_chunk(content, decoder.finishing, self._grace):
                    events = decoder.feed(sse.feed(chunk))
                    if events:
                        yield events
                    if decoder.done:
                        await _read_tail(response)
                        return
                    if decoder.failed:
                        break
                tail = decoder.finish(truncated=sse.truncated and not decoder.finishing)
                if tail:
                    yield tail
        except UpstreamError:
            raise
        except TimeoutError:
            raise UpstreamTimeout("The upstream did not answer in time.") from None
        except aiohttp.ClientConnectorError as exc:
            raise UpstreamUnreachable(f"Cannot reach the upstream: {exc.os_error}") from None
        except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError) as exc:
            raise UpstreamProtocolError(f"The upstream connection broke: {exc}") from None
        except aiohttp.ClientError as exc:
            raise UpstreamUnreachable(f"The upstream request failed: {exc}") from None

    async def _post(self, stack: contextlib.AsyncExitStack, body: dict[str, Any],
                    headers: dict[str, str]) -> aiohttp.ClientResponse:
        """POST upstream; a 400 that names a limit of the model is mended and retried once."""
        model = str(body["model"])
        learned = self._learned.setdefault(model, Learned())
        body, mendable = learned.apply(body), True
        while True:
            response = await stack.enter_async_context(self._session.post(
                self._url, data=orjson.dumps(body), headers=headers, timeout=self._timeout))
            if response.status < 400:
                return response
            error = await _status_error(response, headers)
            mended = None
            if mendable and response.status == 400:
                mended = learn_from_refusal(error.message, body, learned)
            if mended is None:
                raise error
            log.info("upstream model %s refused part of a request (%s); retrying once, mended",
                     model, error.message[:200])
            body, mendable = mended, False

    def _render_options(self, request: Request) -> RenderOptions:
        s = self._settings
        return RenderOptions(model=s.model or request.model,
                             max_tokens_field=s.upstream_max_tokens_field,
                             max_tokens_cap=s.max_tokens_cap or None,
                             send_reasoning_effort=s.send_reasoning_effort,
                             replay_reasoning=s.replay_reasoning)

    def _headers(self, call: Call) -> dict[str, str]:
        headers = {"content-type": "application/json", "accept": "text/event-stream",
                   "user-agent": f"llm-dialect-proxy/{__version__}"}
        key = self._settings.upstream_api_key or self._passthrough_key(call.client_key)
        if key:
            headers["authorization"] = f"Bearer {key}"
        return headers

    def _passthrough_key(self, client_key: str | None) -> str | None:
        # The proxy's own key authenticates clients to us; it must never leave the proxy.
        if not client_key or client_key == self._settings.proxy_api_key:
            return None
        return client_key


async def _next_chunk(content: aiohttp.StreamReader, finishing: bool, grace: float) -> bytes:
    """The next upstream read; b"" at the end. Once the model has finished, an upstream
    that never sends usage or [DONE] must not hold the client's answer (peers.md 3)."""
    if not finishing:
        return await content.readany()
    try:
        return await asyncio.wait_for(content.readany(), grace)
    except TimeoutError:
        return b""


async def _read_tail(response: aiohttp.ClientResponse) -> None:
    """Read what follows the usage chunk (``[DONE]``) so the connection can be reused; an
    upstream that never closes only costs that connection, never the client's answer."""
    try:
        await asyncio.wait_for(response.content.read(), TAIL_WAIT)
    except (TimeoutError, aiohttp.ClientError):
        response.close()


async def _status_error(response: aiohttp.ClientResponse,
                        sent_headers: dict[str, str]) -> UpstreamStatusError:
    raw = await response.content.read(ERROR_BODY_LIMIT)
    status, kind = status_for_upstream(response.status)
    message = _error_message(raw) or f"The upstream answered HTTP {response.status}."
    message = _redact(message, sent_headers.get("authorization", "")[7:])
    log.warning("upstream answered %s: %s", response.status, message[:300])
    error = UpstreamStatusError(message, status=status, kind=kind)
    error.retry_after = response.headers.get("retry-after")
    return error


def _redact(text: str, key: str) -> str:
    """Some servers quote the key they refused; it must reach neither a log nor a client."""
    return text.replace(key, "***") if len(key) >= 8 else text


def _error_message(raw: bytes) -> str:
    try:
        body: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode("utf-8", "replace").strip()[:1000]
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            return str(error.get("message") or error.get("detail") or "")
        return str(error)
    return ""


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise UpstreamProtocolError("The upstream answered with invalid JSON.") from None
    if not isinstance(body, dict):
        raise UpstreamProtocolError("The upstream answered with JSON that is not an object.")
    return body

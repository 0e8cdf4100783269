"""An OpenAI-compatible HTTP upstream (vLLM, DeepSeek, GLM, OpenRouter, OpenAI itself).

Renders the canonical request as a streaming Chat Completions call over the process's
shared ClientSession, feeds the response bytes through the SSE decoder and the OpenAI
stream decoder, and yields canonical event batches as they complete (aiohttp failures
become ``proxy.errors`` in ``http_common``). The response is held in ``async with``, so
a client that goes away (the handler is cancelled) closes the upstream request at once.

A 400 that says what the model cannot take (too many output tokens, an unsupported
field) is mended and retried once, before the client has seen a byte, and remembered for
that model (``proxy.dialects.openai.limits``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson

from proxy import __version__
from proxy.backends.base import Call
from proxy.backends.http_common import (
    FINISH_GRACE,
    json_object,
    next_chunk,
    read_tail,
    status_error,
    upstream_failures,
)
from proxy.canonical import Event, Request
from proxy.config import Settings
from proxy.dialects.openai.limits import Learned, learn_from_refusal
from proxy.dialects.openai.request_render import RenderOptions, render_request
from proxy.dialects.openai.stream_decode import OpenAIStreamDecoder
from proxy.providers import Provider
from proxy.routing import Route
from proxy.sse import SSEDecoder

log = logging.getLogger("proxy.upstream")
MAX_LEARNED_MODELS = 256


class OpenAIBackend:
    def __init__(self, session: aiohttp.ClientSession, provider: Provider,
                 settings: Settings) -> None:
        self._session = session
        self._settings = settings
        self._url = provider.chat_completions_url
        self._secrets = provider.keys
        self._grace = min(FINISH_GRACE, provider.read_timeout or settings.read_timeout)
        self._headers = {"content-type": "application/json", "accept": "text/event-stream",
                         "user-agent": f"llm-dialect-proxy/{__version__}",
                         **dict(provider.headers)}
        self._learned: dict[str, Learned] = {}  # upstream model -> what it refused before

    async def stream(self, request: Request, call: Call, route: Route,
                     key: str | None) -> AsyncIterator[list[Event]]:
        rendered = render_request(request, self._render_options(route))
        decoder = OpenAIStreamDecoder(message_id=call.message_id, model=call.client_model,
                                      input_tokens=call.input_tokens,
                                      tool_names=rendered.tool_names)
        with upstream_failures():
            async with contextlib.AsyncExitStack() as stack:
                response = await self._post(stack, rendered.body, key)
                if response.content_type == "application/json":  # stream=true was ignored
                    yield decoder.feed_completion(json_object(await response.read()))
                    return
                # One loop, no nested generator: this runs once per upstream read.
                sse, content = SSEDecoder(), response.content
                while chunk := await next_chunk(content, decoder.finishing, self._grace):
                    events = decoder.feed(sse.frames(chunk))
                    if events:
                        yield events
                    if decoder.failed:
                        break
                    if decoder.done:
                        await read_tail(response)
                        return
                tail = decoder.finish(truncated=sse.truncated and not decoder.finishing)
                if tail:
                    yield tail

    async def _post(self, stack: contextlib.AsyncExitStack, body: dict[str, Any],
                    key: str | None) -> aiohttp.ClientResponse:
        """POST upstream; a 400 that names a limit of the model is mended and retried once."""
        model = str(body["model"])
        learned = self._learned.get(model)
        if learned is None:
            if len(self._learned) >= MAX_LEARNED_MODELS:  # clients choose model names
                self._learned.pop(next(iter(self._learned)))
            learned = self._learned[model] = Learned()
        body, mendable = learned.apply(body), True
        headers = dict(self._headers)
        if key:
            headers["authorization"] = f"Bearer {key}"
        while True:
            response = await stack.enter_async_context(self._session.post(
                self._url, data=orjson.dumps(body), headers=headers, allow_redirects=False))
            if response.status < 300:
                return response
            error = await status_error(response, (*self._secrets, key))
            mended = None
            if mendable and response.status == 400:
                mended = learn_from_refusal(error.message, body, learned)
            if mended is None:
                raise error
            log.info("upstream model %s refused part of a request (%s); retrying once, mended",
                     model, error.message[:200])
            body, mendable = mended, False

    def _render_options(self, route: Route) -> RenderOptions:
        s = self._settings
        caps = [c for c in (s.max_tokens_cap, route.max_tokens) if c]
        return RenderOptions(model=route.model,
                             max_tokens_field=s.upstream_max_tokens_field,
                             max_tokens_cap=min(caps) if caps else None,
                             send_reasoning_effort=s.send_reasoning_effort,
                             replay_reasoning=s.replay_reasoning,
                             inline_system_messages=s.system_messages == "inline")

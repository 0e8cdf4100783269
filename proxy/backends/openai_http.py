"""An OpenAI-compatible HTTP upstream (vLLM, DeepSeek, GLM, OpenRouter, OpenAI itself).

Renders the canonical request as a streaming Chat Completions call and reads the answer
through the shared read loop (``pipeline``) with the SSE framing and the OpenAI stream
decoder. The response is held in the loop's exit stack, so a client that goes away (the
handler is cancelled) closes the upstream request at once.

A 400 that says what the model cannot take (too many output tokens, an unsupported
field) is mended and retried once, before the client has seen a byte, and remembered for
that model (``proxy.dialects.openai.limits``) in the state store, where every worker
finds it.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import orjson

from proxy.backends.base import Batches, Call, Context, RelayRequest
from proxy.backends.headers import credentials, openai_headers
from proxy.backends.http_common import HttpBackend, HttpBody, json_object, upstream_failures
from proxy.backends.pipeline import Opened, decoded
from proxy.canonical import Request
from proxy.dialects.openai.limits import Learned, learn_from_refusal
from proxy.dialects.openai.request_render import RenderOptions, render_request
from proxy.dialects.openai.stream_decode import OpenAIStreamDecoder
from proxy.errors import StoreUnavailable
from proxy.offload import OFF_LOOP_BYTES, off_loop
from proxy.providers import Provider
from proxy.routing import Route
from proxy.sse import SSEDecoder
from proxy.state.store import Store

log = logging.getLogger("proxy.upstream")
MAX_LEARNED_MODELS = 256  # clients choose model names: the local memory is bounded
LEARNED_TTL = 24 * 3600.0
Rendered = tuple[str, Learned, bytes]  # the upstream model, its learned limits, the body


class OpenAIBackend(HttpBackend):
    def __init__(self, provider: Provider, context: Context) -> None:
        super().__init__(provider, context)
        self._url = provider.chat_completions_url
        self._extra = dict(provider.headers)
        self._learned = LearnedLimits(context.store, provider.name)

    def stream(self, request: Request, call: Call, route: Route, key: str | None) -> Batches:
        tool_names: dict[str, str] = {}  # filled by the render, read by the decoder
        decoder = OpenAIStreamDecoder(message_id=call.message_id, model=call.client_model,
                                      input_tokens=call.input_tokens, tool_names=tool_names)
        # Taken by the opener, so that nothing keeps the request once rendered. A small
        # one is rendered now, in the caller's turn of the loop: the opener runs as a task
        # queued behind every other ready one, and in a burst a thousand requests would
        # wait there each holding its canonical form, several times its upstream bytes.
        held = [self._render_now(request, route, call.body_size, tool_names) or request]

        async def opener(stack: contextlib.AsyncExitStack) -> Opened:
            taken = held.pop()
            model, learned, data = (taken if isinstance(taken, tuple) else await self._rendered(
                taken, route, call.body_size, tool_names))
            response = await self._post(stack, model, learned, data, key)
            if response.content_type == "application/json":  # stream=true was ignored
                return decoder.feed_completion(json_object(await response.read()))
            return HttpBody(response)

        return decoded(opener, SSEDecoder(self.settings.max_frame_bytes), decoder,
                       grace=self.grace, failures=upstream_failures)

    def relay_url(self, relay: RelayRequest) -> str:
        return self._url

    def relay_headers(self, relay: RelayRequest, key: str | None) -> dict[str, str]:
        return {**relay.headers, **self._extra, **credentials("openai", key)}

    def _render_now(self, request: Request, route: Route, size: int,
                    tool_names: dict[str, str]) -> Rendered | None:
        """``_rendered`` without leaving the caller's turn, or None when that would block
        the loop: a body too large to render inline, or a model whose learned limits this
        process has not read from the store yet."""
        learned = self._learned.known(route.model)
        if learned is None or size >= OFF_LOOP_BYTES:
            return None
        rendered = render_request(request, self._render_options(route))
        tool_names.update(rendered.tool_names)
        return str(rendered.body["model"]), learned, orjson.dumps(learned.apply(rendered.body))

    async def _rendered(self, request: Request, route: Route, size: int,
                        tool_names: dict[str, str]) -> Rendered:
        """The upstream model, what it refused before, and the request's bytes with that
        left out. Only the bytes outlive this: the rendered object, several times their
        size, is gone before the upstream is even called."""
        rendered = await off_loop(size, render_request, request, self._render_options(route))
        tool_names.update(rendered.tool_names)
        model = str(rendered.body["model"])
        learned = await self._learned.get(model)
        return model, learned, orjson.dumps(learned.apply(rendered.body))

    async def _post(self, stack: contextlib.AsyncExitStack, model: str, learned: Learned,
                    data: bytes, key: str | None) -> Any:
        """POST upstream; a 400 that names a limit of the model is mended and retried once
        (the bytes parsed again for it: a rare path)."""
        mendable = True
        headers = openai_headers(self._extra, key)
        while True:
            response = await self.post(stack, self._url, data, headers)
            if response.status < 300:
                return response
            error = await self.refused(response, key)
            mended = None
            if mendable and response.status == 400:
                mended = learn_from_refusal(error.message, orjson.loads(data), learned)
            if mended is None:
                raise error
            log.info("upstream model %s refused part of a request (%s); retrying once, mended",
                     model, error.message[:200])
            await self._learned.save(model, learned)
            data, mendable = orjson.dumps(mended), False

    def _render_options(self, route: Route) -> RenderOptions:
        s = self.settings
        caps = [c for c in (s.max_tokens_cap, route.max_tokens) if c]
        return RenderOptions(model=route.model,
                             max_tokens_field=s.upstream_max_tokens_field,
                             max_tokens_cap=min(caps) if caps else None,
                             send_reasoning_effort=s.send_reasoning_effort,
                             replay_reasoning=s.replay_reasoning,
                             inline_system_messages=s.system_messages == "inline")


class LearnedLimits:
    """Per upstream model, what it refused before: kept in the state store (so every
    worker and instance learns once) and in a small local memory (so a request costs a
    store call only the first time a process meets a model)."""

    def __init__(self, store: Store, provider: str) -> None:
        self._store = store
        self._prefix = f"limits:{provider}:"
        self._local: dict[str, Learned] = {}

    def known(self, model: str) -> Learned | None:
        """What this process already holds for ``model``, without asking the store."""
        return self._local.get(model)

    async def get(self, model: str) -> Learned:
        learned = self._local.get(model)
        if learned is None:
            if len(self._local) >= MAX_LEARNED_MODELS:
                self._local.pop(next(iter(self._local)))
            try:
                raw = await self._store.get(self._prefix + model)
            except StoreUnavailable:
                raw = None  # the store is away: learn again if the model refuses
            learned = self._local[model] = _loaded(raw)
        return learned

    async def save(self, model: str, learned: Learned) -> None:
        raw = orjson.dumps({"max_tokens": learned.max_tokens, "token_field": learned.token_field,
                            "dropped": sorted(learned.dropped)})
        with contextlib.suppress(StoreUnavailable):  # this process keeps it anyway
            await self._store.set(self._prefix + model, raw, LEARNED_TTL)


def _loaded(raw: bytes | None) -> Learned:
    if raw is None:
        return Learned()
    try:
        saved = orjson.loads(raw)
        return Learned(max_tokens=saved.get("max_tokens"), token_field=saved.get("token_field"),
                       dropped=set(saved.get("dropped") or ()))
    except (orjson.JSONDecodeError, AttributeError, TypeError):
        return Learned()  # an entry from another version: learn again

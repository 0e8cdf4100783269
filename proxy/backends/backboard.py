"""backboard.io as a backend: its assistant/thread API behind both client dialects.

Each turn goes to a thread that already holds the conversation (only what it has not
seen is sent), or to a fresh warm thread with the whole history replayed
(``dialects/backboard/conversation.py``; ``backboard_threads.py`` keeps the maps in the
state store). backboard's assistant has no tools: the client's tools are described in the
prompt (``prompt_tools``) and the model's JSON calls are sniffed out of its text as it
streams (``filters/tool_sniffer.py``, an event filter on the shared read loop). Images
and documents it cannot take become markers, named in the dropped fields.

A conversation stays with the key whose thread holds it (``key_for``: the failover tries
that key first); if that key fails, the conversation moves to another key's fresh thread
by replay, never to a thread of another key. A refused key is the client's 401/403, not a
502 (``proxy.kinds``: backboard's key errors pass through).
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

import aiohttp
import orjson

from proxy.backends.backboard_threads import Assistants, Taken, Threads
from proxy.backends.base import Batches, Call, Context
from proxy.backends.headers import credentials
from proxy.backends.http_common import ERROR_BODY_LIMIT, HttpBackend, HttpBody, upstream_failures
from proxy.backends.pipeline import Opened, decoded
from proxy.canonical import Collector, Request
from proxy.dialects.backboard import api
from proxy.dialects.backboard.conversation import Turn, plan_turn, reply_parts
from proxy.dialects.backboard.errors import http_error
from proxy.dialects.backboard.media import without_media
from proxy.dialects.backboard.models import model_list
from proxy.dialects.backboard.stream_decode import BackboardStreamDecoder
from proxy.errors import AuthenticationFailed, UpstreamStatusError
from proxy.filters.tool_sniffer import ToolSniffer
from proxy.offload import off_loop
from proxy.prompt_tools.describe import describe_tools
from proxy.providers import Provider
from proxy.routing import Route
from proxy.sse import SSEDecoder

log = logging.getLogger("proxy.backboard")
MODELS_TTL = 600.0  # backboard's model list is asked for at most every ten minutes


class BackboardBackend(HttpBackend):
    def __init__(self, provider: Provider, context: Context) -> None:
        super().__init__(provider, context)
        self._base = provider.base_url.rstrip("/")
        settings = context.settings
        self.assistants = Assistants(context.store, self._find_assistant, self._make_assistant)
        self.threads = Threads(context.store, self._new_thread, ttl=settings.thread_ttl,
                               pool_size=settings.thread_pool_size)
        self._models: tuple[float, list[tuple[str, str]]] = (0.0, [])

    async def start(self) -> None:
        await super().start()
        for key in self.provider.keys:
            self.threads.fill(key)  # in the background: a down backboard delays nothing

    async def close(self) -> None:
        await self.threads.close()
        await super().close()

    # ------------------------------------------------------------------------ a turn

    async def key_for(self, request: Request) -> str | None:
        """The provider key whose thread holds this conversation, if one does."""
        if len(self.provider.keys) < 2:
            return None
        turn, _ = await self._turn(request, 0)
        for key in self.provider.keys:
            if await self.threads.holds(key, turn):
                return key
        return None

    def stream(self, request: Request, call: Call, route: Route, key: str | None) -> Batches:
        return self._stream(request, call, route, key)

    async def _stream(self, request: Request, call: Call, route: Route,
                      key: str | None) -> Batches:
        if not key:
            raise AuthenticationFailed("backboard needs an API key: set UPSTREAM_API_KEY (or "
                                       "BBD_API_KEY), or send yours as x-api-key.")
        turn, dropped = await self._turn(request, call.body_size)
        if dropped:
            log.info("%s: not sent to backboard, which cannot take them: %s",
                     call.message_id, ", ".join(dropped))
        taken = await self.threads.for_turn(key, turn)
        used = [taken]  # the thread this turn ends on (a lost one is replaced)
        try:
            collector = Collector()
            sniffer = ToolSniffer(tool.name for tool in request.tools)
            decoder = BackboardStreamDecoder(message_id=call.message_id,
                                             model=call.client_model,
                                             input_tokens=call.input_tokens)

            async def opener(stack: contextlib.AsyncExitStack) -> Opened:
                return HttpBody(await self._post_turn(stack, key, turn, route, used))

            async for batch in decoded(opener, SSEDecoder(self.settings.max_frame_bytes),
                                       decoder, (sniffer,), grace=self.grace,
                                       failures=upstream_failures):
                collector.feed(batch)
                if collector.message.complete:  # before the last batch: a client that is
                    await self.threads.remember(  # done may close this generator at once
                        key, turn, reply_parts(collector.message), used[-1].thread)
                yield batch
        finally:
            for taken_thread in used:
                await self.threads.release(taken_thread.thread)

    async def _turn(self, request: Request, size: int) -> tuple[Turn, tuple[str, ...]]:
        """The turn to post, and the media left out of it (backboard takes none)."""
        return await off_loop(size, _plan, request)

    async def _post_turn(self, stack: contextlib.AsyncExitStack, key: str, turn: Turn,
                         route: Route, used: list[Taken]) -> aiohttp.ClientResponse:
        """Post the turn; a thread backboard lost (deleted, expired) is replaced by a fresh
        one with the whole history, before the client has seen a byte."""
        taken = used[-1]
        content = turn.replay if taken.fresh else turn.new_turn
        response = await self._post_message(stack, key, taken.thread, content, route.model)
        if response.status == 404 and not taken.fresh:
            error = await self.refused(response, key)
            if "thread" not in error.message.lower():
                raise error
            log.info("backboard lost thread %s; replaying the conversation", taken.thread)
            fresh = Taken(await self.threads.fresh(key), fresh=True)
            used.append(fresh)
            response = await self._post_message(stack, key, fresh.thread, turn.replay,
                                                route.model)
        if response.status >= 300:
            raise await self.refused(response, key)
        return response

    async def _post_message(self, stack: contextlib.AsyncExitStack, key: str, thread: str,
                            content: str, model: str) -> aiohttp.ClientResponse:
        body = orjson.dumps(api.message_fields(content, model, stream=True))
        return await self.post(stack, f"{self._base}/threads/{thread}/messages", body,
                               self._headers(key))

    # ------------------------------------------------------------ assistants, threads

    async def _new_thread(self, key: str) -> str:
        assistant = await self.assistants.of(key)
        body = await self._call("POST", f"/assistants/{assistant}/threads", key,
                                api.THREAD_BODY)
        return api.thread_id(body)

    async def _find_assistant(self, key: str) -> str | None:
        return api.find_assistant(await self._call("GET", "/assistants", key,
                                                   query=api.assistants_query()))

    async def _make_assistant(self, key: str) -> str:
        return api.assistant_id(await self._call("POST", "/assistants", key,
                                                 api.assistant_body()))

    async def models(self) -> list[tuple[str, str]]:
        """backboard's language models, as a client should name them (cached)."""
        fetched, models = self._models
        if models and time.monotonic() - fetched < MODELS_TTL:
            return models
        key = self.provider.keys[0] if self.provider.keys else None
        if not key:
            return []
        models = model_list(await self._call("GET", "/models", key, query=api.MODELS_QUERY))
        self._models = (time.monotonic(), models)
        return models

    async def _call(self, method: str, path: str, key: str, body: Any = None, *,
                    query: dict[str, str] | None = None) -> Any:
        """One JSON call of backboard's API, its failures as the client should see them."""
        with upstream_failures():
            async with contextlib.AsyncExitStack() as stack:
                response = await self.request(
                    stack, method, self._base + path, params=query, headers=self._headers(key),
                    data=None if body is None else orjson.dumps(body))
                if response.status >= 300:
                    raise await self.refused(response, key)
                try:
                    return orjson.loads(await response.read())
                except orjson.JSONDecodeError:
                    raise UpstreamStatusError("backboard answered with invalid JSON.",
                                              status=502) from None

    async def refused(self, response: aiohttp.ClientResponse,
                      key: str | None) -> UpstreamStatusError:
        raw = await response.content.read(ERROR_BODY_LIMIT)
        masked = self.context.masker.body(raw, (key,))
        error = http_error(response.status, masked,
                           retry_after=response.headers.get("retry-after"))
        log.warning("backboard answered %s: %s", response.status, error.message[:300])
        return error

    def _headers(self, key: str) -> dict[str, str]:
        return {"content-type": "application/json", "accept": "text/event-stream",
                **dict(self.provider.headers), **credentials("backboard", key)}

    # -------------------------------------------------------------------------- debug

    async def debug_state(self) -> dict[str, object]:
        return {"provider": self.provider.name, "assistants": self.assistants.state(),
                **await self.threads.state()}

    async def debug_clear(self) -> int:
        return await self.threads.clear()


def _plan(request: Request) -> tuple[Turn, tuple[str, ...]]:
    sendable = without_media(request)
    return plan_turn(describe_tools(sendable)), sendable.dropped[len(request.dropped):]

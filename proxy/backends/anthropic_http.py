"""An Anthropic Messages HTTP upstream (api.anthropic.com, or a gateway that speaks it).

Renders the canonical request as a streaming ``/v1/messages`` call and reads the answer
through the shared read loop with the SSE framing and the Anthropic stream decoder. The
client's own ``anthropic-version`` and ``anthropic-beta`` reach the upstream on this
translated path as on the relay (``headers.anthropic_headers``).
"""

from __future__ import annotations

import contextlib
from dataclasses import replace

import orjson

from proxy.backends.base import Batches, Call, Context, RelayRequest
from proxy.backends.headers import anthropic_headers
from proxy.backends.http_common import HttpBackend, HttpBody, json_object, upstream_failures
from proxy.backends.pipeline import Opened, decoded
from proxy.canonical import Request
from proxy.dialects.anthropic.request_render import RenderOptions, render_request
from proxy.dialects.anthropic.stream_decode import AnthropicStreamDecoder
from proxy.offload import OFF_LOOP_BYTES, off_loop
from proxy.providers import Provider
from proxy.routing import Route
from proxy.sse import SSEDecoder


class AnthropicBackend(HttpBackend):
    def __init__(self, provider: Provider, context: Context) -> None:
        super().__init__(provider, context)
        self._url = provider.messages_url
        self._extra = dict(provider.headers)

    def stream(self, request: Request, call: Call, route: Route, key: str | None) -> Batches:
        decoder = AnthropicStreamDecoder(message_id=call.message_id, model=call.client_model,
                                         input_tokens=call.input_tokens)
        # Taken by the opener, so that nothing keeps the request once rendered; a small one
        # is rendered now, in the caller's turn (why: openai_http.py, ``stream``).
        held: list[Request | bytes] = [
            self._render(request, route) if call.body_size < OFF_LOOP_BYTES else request]

        async def opener(stack: contextlib.AsyncExitStack) -> Opened:
            taken = held.pop()
            body = (taken if isinstance(taken, bytes)
                    else await off_loop(call.body_size, self._render, taken, route))
            headers = {**anthropic_headers(self.settings, key, call.client_headers),
                       **self._extra}
            response = await self.post(stack, self._url, body, headers)
            if response.status >= 300:
                raise await self.refused(response, key)
            if response.content_type == "application/json":  # stream=true was ignored
                return decoder.feed_message(json_object(await response.read()))
            return HttpBody(response)

        return decoded(opener, SSEDecoder(self.settings.max_frame_bytes), decoder,
                       grace=self.grace, failures=upstream_failures)

    def relay_url(self, relay: RelayRequest) -> str:
        query = f"?{relay.query}" if relay.query else ""
        return self._url + relay.path + query

    def relay_headers(self, relay: RelayRequest, key: str | None) -> dict[str, str]:
        headers = {**relay.headers, **anthropic_headers(self.settings, key, relay.headers),
                   **self._extra}
        if not self.settings.claude_code_headers:  # the client speaks for itself
            headers.update({k: relay.headers[k] for k in ("user-agent", "accept")
                            if k in relay.headers})
        return headers

    def _render(self, request: Request, route: Route) -> bytes:
        settings = self.settings
        max_tokens = request.max_tokens or settings.default_max_tokens
        if route.max_tokens:
            max_tokens = min(max_tokens, route.max_tokens)
        return orjson.dumps(render_request(replace(request, max_tokens=max_tokens), RenderOptions(
            model=route.model, default_max_tokens=settings.default_max_tokens)))

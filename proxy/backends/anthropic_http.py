"""An Anthropic Messages HTTP upstream (api.anthropic.com, or a gateway that speaks it).

Renders the canonical request as a streaming ``/v1/messages`` call over the shared
ClientSession and yields canonical event batches from the Anthropic stream decoder. Also
the one place that builds Anthropic request headers, for this backend and for the
same-dialect relay: the key, ``anthropic-version``, ``anthropic-beta``, and the optional
Claude Code header profile (off by default; see ``CLAUDE_CODE_PROFILE``).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import replace

import aiohttp
import orjson

from proxy import __version__
from proxy.backends.base import Call
from proxy.backends.http_common import json_object, read_tail, status_error, upstream_failures
from proxy.canonical import Event, Request
from proxy.config import Settings
from proxy.dialects.anthropic.request_render import RenderOptions, render_request
from proxy.dialects.anthropic.stream_decode import AnthropicStreamDecoder
from proxy.providers import Provider
from proxy.routing import Route
from proxy.sse import SSEDecoder

# How Claude Code 2.1.330 presents itself (research/claude-code.md 3.2), in one place.
# Using it may breach the provider's terms; it is off unless CLAUDE_CODE_HEADERS is set,
# and CLAUDE_CODE_PROFILE (a JSON object of headers) replaces or extends any of it.
CLAUDE_CODE_PROFILE = {
    "user-agent": "claude-cli/2.1.330 (external, cli)",
    "x-app": "cli",
    "anthropic-dangerous-direct-browser-access": "true",
    "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14,"
                      "context-management-2025-06-27,effort-2025-11-24",
}


def anthropic_headers(settings: Settings, key: str | None,
                      client_headers: dict[str, str] | None = None) -> dict[str, str]:
    """Headers for an Anthropic upstream. A client's own ``anthropic-version`` and
    ``anthropic-beta`` win over the configured ones (the gateway contract: never add or
    drop a beta behind the client's back); configured betas are added to them."""
    client_headers = client_headers or {}
    headers = {"content-type": "application/json", "accept": "application/json",
               "user-agent": f"llm-dialect-proxy/{__version__}",
               "anthropic-version": client_headers.get("anthropic-version")
               or settings.anthropic_version}
    betas = [client_headers.get("anthropic-beta", ""), settings.anthropic_beta]
    if settings.claude_code_headers:
        profile = {**CLAUDE_CODE_PROFILE, **json.loads(settings.claude_code_profile or "{}")}
        betas.append(profile.pop("anthropic-beta", ""))
        headers.update({k.lower(): v for k, v in profile.items()})
    merged = list(dict.fromkeys(b.strip() for part in betas for b in part.split(",")
                                if b.strip()))
    if merged:
        headers["anthropic-beta"] = ",".join(merged)
    elif "anthropic-beta" in headers:
        del headers["anthropic-beta"]
    if key:
        # Subscription OAuth tokens go as a bearer token; API keys as x-api-key.
        if key.startswith("sk-ant-oat"):
            headers["authorization"] = f"Bearer {key}"
        else:
            headers["x-api-key"] = key
    return headers


class AnthropicBackend:
    def __init__(self, session: aiohttp.ClientSession, provider: Provider,
                 settings: Settings) -> None:
        self._session = session
        self._settings = settings
        self._provider = provider
        self._url = provider.messages_url

    async def stream(self, request: Request, call: Call, route: Route,
                     key: str | None) -> AsyncIterator[list[Event]]:
        settings = self._settings
        max_tokens = request.max_tokens or settings.default_max_tokens
        if route.max_tokens:
            max_tokens = min(max_tokens, route.max_tokens)
        body = render_request(replace(request, max_tokens=max_tokens), RenderOptions(
            model=route.model, default_max_tokens=settings.default_max_tokens))
        decoder = AnthropicStreamDecoder(message_id=call.message_id, model=call.client_model,
                                         input_tokens=call.input_tokens)
        headers = {**anthropic_headers(settings, key), **dict(self._provider.headers)}
        with upstream_failures():
            async with contextlib.AsyncExitStack() as stack:
                response = await stack.enter_async_context(self._session.post(
                    self._url, data=orjson.dumps(body), headers=headers, allow_redirects=False))
                if response.status >= 300:  # a redirect would carry the key to another host
                    raise await status_error(response, (*self._provider.keys, key))
                if response.content_type == "application/json":  # stream=true was ignored
                    yield decoder.feed_message(json_object(await response.read()))
                    return
                sse, content = SSEDecoder(), response.content
                while chunk := await content.readany():
                    events = decoder.feed(sse.frames(chunk))
                    if events:
                        yield events
                    if decoder.failed:
                        break
                    if decoder.done:
                        await read_tail(response)
                        return
                decoder.finish(truncated=sse.truncated)

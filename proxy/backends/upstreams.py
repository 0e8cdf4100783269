"""Every configured provider, ready to call: its ClientSession, its backend, its keys.

One ClientSession per provider and process, made when the app starts and closed with it:
per provider, because connection limits and timeouts are per provider (a2o's
``--max-connections`` and ``--max-connections-per-host``); with connect and read timeouts
and no total timeout, which would cut long generations.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from functools import partial

import aiohttp

from proxy.backends.anthropic_http import AnthropicBackend
from proxy.backends.base import Backend, Call
from proxy.backends.failover import Attempts, passthrough_key, stream_with_failover
from proxy.backends.keys import KeyPool
from proxy.backends.openai_http import OpenAIBackend
from proxy.canonical import Event, Request
from proxy.config import Settings
from proxy.observe.trace import Trace
from proxy.providers import Provider
from proxy.routing import Plan

BACKENDS: dict[str, Callable[[aiohttp.ClientSession, Provider, Settings], Backend]] = {
    "openai": OpenAIBackend, "anthropic": AnthropicBackend}


class Upstreams:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.sessions: dict[str, aiohttp.ClientSession] = {}
        self.backends: dict[str, Backend] = {}
        self.pools: dict[str, KeyPool] = {}

    @contextlib.asynccontextmanager
    async def opened(self, providers: tuple[Provider, ...]) -> AsyncIterator[Upstreams]:
        async with contextlib.AsyncExitStack() as stack:
            for provider in providers:
                session = await stack.enter_async_context(self._session(provider))
                self.sessions[provider.name] = session
                make = BACKENDS[provider.dialect]
                self.backends[provider.name] = make(session, provider, self._settings)
                self.pools[provider.name] = KeyPool(provider.keys)
            yield self

    def attempts(self, plan: Plan, client_key: str | None, trace: Trace) -> Attempts:
        return Attempts(plan, self.pools, partial(passthrough_key, self._settings,
                                                  client_key=client_key), trace)

    def stream(self, request: Request, call: Call, plan: Plan,
               trace: Trace) -> AsyncIterator[list[Event]]:
        """The events of the first attempt that answered, retries and failover included."""
        attempts = self.attempts(plan, call.client_key, trace)
        return stream_with_failover(self.backends, attempts, request, call, call.commit_wait)

    def _session(self, provider: Provider) -> aiohttp.ClientSession:
        settings = self._settings
        connector = aiohttp.TCPConnector(limit=provider.max_connections,
                                         limit_per_host=provider.max_connections_per_host)
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=provider.connect_timeout or settings.connect_timeout,
            sock_read=provider.read_timeout or settings.read_timeout)
        return aiohttp.ClientSession(connector=connector, timeout=timeout)

"""Every configured provider, ready to call: its backend (of the provider's kind, made,
started and closed with the app) and its keys; and the two ways in: translated
(``stream``) and relayed (``relay``), both through the same attempts and failover.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
from collections.abc import AsyncIterator, Callable
from functools import partial

import aiohttp

from proxy.backends.base import (
    Backend,
    Batches,
    Call,
    Context,
    Debugging,
    Listing,
    Relaying,
    RelayRequest,
    Reporting,
)
from proxy.backends.failover import Attempts, Requests, passthrough_key, stream_with_failover
from proxy.backends.keys import KeyPool
from proxy.backends.relay import Refusal, relay_with_failover
from proxy.canonical import Request
from proxy.errors import ProxyError
from proxy.observe.trace import Trace
from proxy.providers import Provider
from proxy.routing import Plan
from proxy.web_tools.loop import web_tool_stream
from proxy.web_tools.offer import asked_for, wants_web_tools

log = logging.getLogger("proxy.upstreams")
BackendFactory = Callable[[Provider, Context], Backend]


def backend_of_kind(provider: Provider, context: Context) -> Backend:
    """The backend ``proxy.kinds`` names for the provider's kind."""
    module, _, name = provider.backend_kind.backend.partition(":")
    made: Backend = getattr(importlib.import_module(module), name)(provider, context)
    return made


class Upstreams:
    def __init__(self, context: Context, make: BackendFactory = backend_of_kind) -> None:
        self._context = context
        self._make = make
        self.backends: dict[str, Backend] = {}
        self.relayers: dict[str, Relaying] = {}  # the backends that can relay their wire
        self.pools: dict[str, KeyPool] = {}
        self._providers: tuple[Provider, ...] = ()

    @contextlib.asynccontextmanager
    async def opened(self, providers: tuple[Provider, ...]) -> AsyncIterator[Upstreams]:
        async with contextlib.AsyncExitStack() as stack:
            for provider in providers:
                backend = self._make(provider, self._context)
                await backend.start()
                stack.push_async_callback(backend.close)
                self.backends[provider.name] = backend
                if provider.wire is not None and isinstance(backend, Relaying):
                    self.relayers[provider.name] = backend
                self.pools[provider.name] = KeyPool(provider.name, provider.keys,
                                                    self._context.store)
            self._providers = providers
            yield self

    async def listed_models(self, configured: list[tuple[str, str]]
                            ) -> list[tuple[str, str]]:
        """The configured models, and those of providers that list their own and have
        none configured (a backboard provider)."""
        listed = list(configured)
        if configured and len(self._providers) == 1:
            return listed
        for provider in self._providers:
            backend = self.backends[provider.name]
            if not provider.models and isinstance(backend, Listing):
                try:
                    listed += await backend.models()
                except ProxyError as exc:
                    log.warning("%s: its models could not be listed: %s", provider.name,
                                exc.message)
        return list(dict.fromkeys(listed))

    def health(self) -> dict[str, dict[str, object]]:
        return {name: b.health() for name, b in self.backends.items() if isinstance(b, Reporting)}

    def debugging(self) -> dict[str, Debugging]:
        return {name: b for name, b in self.backends.items() if isinstance(b, Debugging)}

    def attempts(self, plan: Plan, client_key: str | None, trace: Trace) -> Attempts:
        settings, masker = self._context.settings, self._context.masker
        return Attempts(plan, self.pools,
                        partial(passthrough_key, settings, client_key=client_key), trace,
                        redact=partial(masker, extra=(client_key,)))

    def stream(self, request: Request, call: Call, plan: Plan, trace: Trace,
               again: Callable[[], Request] | None = None) -> Batches:
        """The events of the first attempt that answered, retries and failover included.
        ``again`` parses the client's body anew for a retry, so that ``request`` need not
        be kept until then. A request asking for web search or fetch gets them run here,
        for any backend (proxy/web_tools/loop.py): each round of the model is such a
        stream of its own."""
        def one_round(round_request: Request | Requests) -> Batches:
            attempts = self.attempts(plan, call.client_key, trace)
            return stream_with_failover(self.backends, attempts, round_request, call,
                                        self._context.settings.ping_interval)

        if wants_web_tools(request):
            return web_tool_stream(one_round, request, call, self._context.tavily)
        if again is None:
            return one_round(request)
        # No second attempt: the client's body ``again`` holds goes now, not at commit.
        return one_round(Requests(request, None if Attempts.one_only(plan, self.pools)
                                  else again))

    @property
    def runs_web_tools(self) -> bool:
        """Whether web search and fetch run here (a Tavily key is set)."""
        return self._context.tavily is not None

    def unserved(self, request: Request) -> tuple[str, ...]:
        """The web tools ``request`` asks for that will not run (no Tavily key), for the
        dropped-fields header."""
        return () if self._context.tavily is not None else asked_for(request)

    async def relay(self, relay: RelayRequest, plan: Plan, client_key: str | None,
                    trace: Trace, stack: contextlib.AsyncExitStack
                    ) -> aiohttp.ClientResponse | Refusal:
        """The first answer to ``relay`` (held open in ``stack``), or a refusal to pass on;
        ``relay.Exhausted`` when nothing answered."""
        return await relay_with_failover(self.relayers, self.attempts(plan, client_key, trace),
                                         relay, stack)

"""Building the aiohttp Application: routes, middlewares, the router and the upstreams.

The one upstream ClientSession, the backends (one per provider, each with its own
resources: a process pool, a thread pool), the state store and the Tavily client (web
search and fetch, when a key is set) are made in ``cleanup_ctx`` and closed with the app.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

from proxy.backends.base import Context
from proxy.backends.http_common import upstream_session
from proxy.backends.upstreams import Upstreams
from proxy.config import Settings
from proxy.edge.inbound import Inbound
from proxy.edge.middleware import auth, errors, request_context
from proxy.edge.routes import add_routes
from proxy.keys import (
    INBOUND_KEY,
    OBSERVERS_KEY,
    ROUTER_KEY,
    SETTINGS_KEY,
    STORE_KEY,
    TOKEN_COUNTS_KEY,
    UPSTREAMS_KEY,
)
from proxy.observe.observers import Observers
from proxy.routing import Router
from proxy.state import open_store
from proxy.state.factory import store_label
from proxy.state.guard import GuardedStore
from proxy.web_tools.configured import tavily_settings
from proxy.web_tools.settings import TavilySettings
from proxy.web_tools.tavily import TavilyClient


def create_app(settings: Settings) -> web.Application:
    # aiohttp's default body limit is 1 MiB; Claude Code sends more (claude-code.md 3.6).
    app = web.Application(client_max_size=settings.max_body_bytes,
                          middlewares=[request_context, errors, auth])
    app[SETTINGS_KEY] = settings
    app[ROUTER_KEY] = router = Router(settings, settings.providers_file)
    tavily = tavily_settings(settings)  # bad Tavily settings stop the start here
    secrets = (settings.proxy_api_key, *(k for p in router.providers for k in p.keys),
               *((tavily.api_key,) if tavily else ()))
    app[OBSERVERS_KEY] = Observers(settings, secrets)
    app[TOKEN_COUNTS_KEY] = {}
    app.cleanup_ctx.append(_upstreams(tavily))
    app.on_cleanup.append(_close_observers)
    add_routes(app)
    return app


def server_options() -> dict[str, Any]:
    """How the HTTP server runs the app, the same under ``run_app`` and in the tests:
    a client that disconnects cancels its handler (which closes the upstream request at
    once); no aiohttp access log (ours is richer); and no inflating of request bodies as
    they arrive, which aiohttp would do on the event loop without a bound (the edge
    inflates them itself, bounded: ``edge/body.py``)."""
    return {"handler_cancellation": True, "access_log": None, "auto_decompress": False}


async def _close_observers(app: web.Application) -> None:
    await app[OBSERVERS_KEY].close()  # session-log files still being written


def _upstreams(tavily_settings: TavilySettings | None
               ) -> Callable[[web.Application], AsyncIterator[None]]:
    async def made(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS_KEY]
        inner = open_store(settings.state_url, workers=settings.workers,
                           state_directory=settings.state_directory)
        app[STORE_KEY] = store = GuardedStore(inner, store_label(inner))
        file_keys = settings.providers_file.keys if settings.providers_file else ()
        app[INBOUND_KEY] = Inbound.configured(settings.proxy_api_key, file_keys, store)
        session = upstream_session(settings)  # the process's one, for every upstream
        tavily = (TavilyClient(tavily_settings, session) if tavily_settings is not None
                  else None)
        context = Context(settings, app[OBSERVERS_KEY].masker, store, tavily, session)
        try:
            async with Upstreams(context).opened(app[ROUTER_KEY].providers) as upstreams:
                app[UPSTREAMS_KEY] = upstreams
                yield
        finally:
            await session.close()
            await store.close()
    return made

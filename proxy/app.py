"""Building the aiohttp Application: routes, middlewares, the router and the upstreams.

The upstreams (one ClientSession per provider) are made in ``cleanup_ctx`` and closed
with the app.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from proxy.backends.upstreams import Upstreams
from proxy.config import Settings
from proxy.edge.middleware import auth, errors, request_context
from proxy.edge.routes import add_routes
from proxy.keys import OBSERVERS_KEY, ROUTER_KEY, SETTINGS_KEY, TOKEN_COUNTS_KEY, UPSTREAMS_KEY
from proxy.observe.observers import Observers
from proxy.routing import Router


def create_app(settings: Settings) -> web.Application:
    # aiohttp's default body limit is 1 MiB; Claude Code sends more (claude-code.md 3.6).
    app = web.Application(client_max_size=settings.max_body_bytes,
                          middlewares=[request_context, errors, auth])
    app[SETTINGS_KEY] = settings
    app[ROUTER_KEY] = router = Router(settings, settings.providers_file)
    secrets = (settings.proxy_api_key, *(k for p in router.providers for k in p.keys))
    app[OBSERVERS_KEY] = Observers(settings, secrets)
    app[TOKEN_COUNTS_KEY] = {}
    app.cleanup_ctx.append(_upstreams)
    app.on_cleanup.append(_close_observers)
    add_routes(app)
    return app


async def _close_observers(app: web.Application) -> None:
    await app[OBSERVERS_KEY].close()  # session-log files still being written


async def _upstreams(app: web.Application) -> AsyncIterator[None]:
    async with Upstreams(app[SETTINGS_KEY]).opened(app[ROUTER_KEY].providers) as upstreams:
        app[UPSTREAMS_KEY] = upstreams
        yield

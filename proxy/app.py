"""Building the aiohttp Application: routes, middlewares, and the shared upstream session.

One ``ClientSession`` per process, made in ``cleanup_ctx`` and closed with the app; it has
connect and read timeouts but no total timeout, which would cut long generations.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from proxy.backends.anthropic_http import AnthropicBackend
from proxy.backends.openai_http import OpenAIBackend
from proxy.config import Settings
from proxy.edge.middleware import auth, errors, request_context
from proxy.edge.routes import add_routes
from proxy.keys import BACKEND_KEY, SETTINGS_KEY, UPSTREAM_SESSION_KEY

MAX_CONNECTIONS = 1000
MAX_CONNECTIONS_PER_HOST = 500


def create_app(settings: Settings) -> web.Application:
    # aiohttp's default body limit is 1 MiB; Claude Code sends more (claude-code.md 3.6).
    app = web.Application(client_max_size=settings.max_body_bytes,
                          middlewares=[request_context, errors, auth])
    app[SETTINGS_KEY] = settings
    app.cleanup_ctx.append(_upstream_session)
    add_routes(app)
    return app


async def _upstream_session(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS_KEY]
    connector = aiohttp.TCPConnector(limit=MAX_CONNECTIONS,
                                     limit_per_host=MAX_CONNECTIONS_PER_HOST)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=settings.connect_timeout,
                                    sock_read=settings.read_timeout)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        app[UPSTREAM_SESSION_KEY] = session
        # The backend for translated calls; same-dialect calls are relayed (edge/relay.py).
        backend = AnthropicBackend if settings.anthropic else OpenAIBackend
        app[BACKEND_KEY] = backend(session, settings)
        yield

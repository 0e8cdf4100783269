"""``GET /debug/state`` and ``POST /debug/clear``: what stateful backends keep (backboard's
assistants, warm threads, conversation and tool maps: counts and ages, never a key), and a
way to make them forget it. Behind the proxy key, like every path but ``/`` and
``/health``."""

from __future__ import annotations

from aiohttp import web

from proxy.edge.body import json_response
from proxy.keys import UPSTREAMS_KEY


async def debug_state(request: web.Request) -> web.Response:
    backends = request.app[UPSTREAMS_KEY].debugging()
    return json_response({"backends": {name: await backend.debug_state()
                                       for name, backend in backends.items()}})


async def debug_clear(request: web.Request) -> web.Response:
    backends = request.app[UPSTREAMS_KEY].debugging()
    cleared = {name: await backend.debug_clear() for name, backend in backends.items()}
    return json_response({"cleared": cleared})

"""Every typed key for state shared on the aiohttp Application; no module globals."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from proxy.backends.base import Backend
from proxy.config import Settings

SETTINGS_KEY = web.AppKey("settings", Settings)
UPSTREAM_SESSION_KEY = web.AppKey("upstream_session", aiohttp.ClientSession)
BACKEND_KEY = web.AppKey("backend", Backend)

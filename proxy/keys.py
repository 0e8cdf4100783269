"""Every typed key for state shared on the aiohttp Application; no module globals."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from proxy.backends.base import Backend
from proxy.config import Settings

SETTINGS_KEY = web.AppKey("settings", Settings)
UPSTREAM_SESSION_KEY = web.AppKey("upstream_session", aiohttp.ClientSession)
BACKEND_KEY = web.AppKey("backend", Backend)

# Per-request facts the access line reports, written by whichever layer learns them.
REQUEST_ID_KEY = web.RequestKey("request_id", str)
STARTED_KEY = web.RequestKey("started", float)
TTFB_MS_KEY = web.RequestKey("ttfb_ms", float)
MODEL_KEY = web.RequestKey("model", str)
STOP_REASON_KEY = web.RequestKey("stop_reason", str)
USAGE_KEY = web.RequestKey("usage", str)

"""Every typed key for state shared on the aiohttp Application; no module globals."""

from __future__ import annotations

from aiohttp import web

from proxy.backends.upstreams import Upstreams
from proxy.config import Settings
from proxy.routing import Router

SETTINGS_KEY = web.AppKey("settings", Settings)
ROUTER_KEY = web.AppKey("router", Router)
UPSTREAMS_KEY = web.AppKey("upstreams", Upstreams)

# Per-request facts the access line reports, written by whichever layer learns them.
REQUEST_ID_KEY = web.RequestKey("request_id", str)
STARTED_KEY = web.RequestKey("started", float)
TTFB_MS_KEY = web.RequestKey("ttfb_ms", float)
MODEL_KEY = web.RequestKey("model", str)
STOP_REASON_KEY = web.RequestKey("stop_reason", str)
USAGE_KEY = web.RequestKey("usage", str)

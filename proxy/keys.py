"""Every typed key for state shared on the aiohttp Application; no module globals."""

from __future__ import annotations

from aiohttp import web

from proxy.backends.upstreams import Upstreams
from proxy.config import Settings
from proxy.edge.inbound import Inbound
from proxy.observe.observers import Observers
from proxy.observe.trace import Trace
from proxy.providers import InboundKey
from proxy.routing import Router
from proxy.state.guard import GuardedStore

SETTINGS_KEY = web.AppKey("settings", Settings)
ROUTER_KEY = web.AppKey("router", Router)
UPSTREAMS_KEY = web.AppKey("upstreams", Upstreams)
OBSERVERS_KEY = web.AppKey("observers", Observers)
STORE_KEY = web.AppKey("store", GuardedStore)
INBOUND_KEY = web.AppKey("inbound", Inbound)
TOKEN_COUNTS_KEY = web.AppKey("token_counts", dict[bytes, int])  # count_tokens, by body hash

# Everything one request learns, for the access line, the metrics and the session log.
TRACE_KEY = web.RequestKey("trace", Trace)
CALLER_KEY = web.RequestKey("caller", InboundKey)  # the inbound key a request came with

"""The route table, and the small handlers that need no upstream: models, health, root.

Routes match on the path alone, so Claude Code's ``?beta=true`` and any other query
string are fine. OpenAI clients are served under ``/v1`` and ``/api/v1`` alike.
"""

from __future__ import annotations

from aiohttp import web

from proxy.dialects.anthropic import responses as anthropic_responses
from proxy.dialects.openai import responses as openai_responses
from proxy.edge.body import json_response
from proxy.edge.chat import chat_completions
from proxy.edge.debug import debug_clear, debug_state
from proxy.edge.errors import ANTHROPIC, client_dialect
from proxy.edge.messages import count_tokens, messages
from proxy.keys import OBSERVERS_KEY, ROUTER_KEY, SETTINGS_KEY, STORE_KEY, UPSTREAMS_KEY

HEALTH_PING_SECONDS = 1.0


async def models(request: web.Request) -> web.Response:
    """``GET /v1/models`` in the asking client's format."""
    listed = await request.app[UPSTREAMS_KEY].listed_models(
        request.app[ROUTER_KEY].listed_models())
    if client_dialect(request) == ANTHROPIC:
        return json_response(anthropic_responses.models_body(listed))
    return json_response(openai_responses.models_body(listed))


async def metrics(request: web.Request) -> web.Response:
    """``GET /metrics``: Prometheus text format (every worker's figures, added up)."""
    observers = request.app[OBSERVERS_KEY]
    return web.Response(body=observers.metrics.render(),
                        headers={"Content-Type": observers.metrics.content_type})


async def health(request: web.Request) -> web.Response:
    """``GET /health``; ``health`` and ``message`` as the Go claude-proxy answers, for the
    monitors its users have. A state store that does not answer makes it ``degraded``
    (still 200: requests that do not need the store go on)."""
    settings = request.app[SETTINGS_KEY]
    state = await request.app[STORE_KEY].check(HEALTH_PING_SECONDS)
    backends = request.app[UPSTREAMS_KEY].health()
    fine = state["ok"] and all(b.get("ok", True) for b in backends.values())
    status = "ok" if fine else "degraded"
    return json_response({"status": status, "health": status, "message": "llm-dialect-proxy",
                          "upstream_configured": settings.upstream_configured,
                          "upstream_dialect": settings.upstream_dialect, "store": state,
                          **({"backends": backends} if backends else {})})


async def root(request: web.Request) -> web.Response:
    """``GET``/``HEAD /``: Claude Code probes it at start-up; answer at once."""
    return json_response({"service": "llm-dialect-proxy", "health": "/health"})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/messages", messages)
    app.router.add_post("/v1/messages/count_tokens", count_tokens)
    for prefix in ("/v1", "/api/v1"):
        app.router.add_post(f"{prefix}/chat/completions", chat_completions)
        app.router.add_get(f"{prefix}/models", models)
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/", root)
    app.router.add_get("/debug/state", debug_state)
    app.router.add_post("/debug/clear", debug_clear)

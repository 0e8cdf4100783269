"""The Tavily settings from the proxy's settings, checked at start.

``config.py`` reads ``TAVILY_*`` and ``LOCAL_PROXY_ADDRESS`` (flags, environment, ``.env``)
and the providers file's ``tavily_key``/``tavily_url`` like every other setting; this turns
them into ``TavilySettings`` and stops the server with a clear message when one is bad,
even while no key is set (a typo should not wait for the day a key is added).
"""

from __future__ import annotations

from proxy.config import Settings
from proxy.web_tools.settings import TavilySettings


def tavily_settings(settings: Settings) -> TavilySettings | None:
    """None when no key is set: the web tools are then left out of every request."""
    values = {
        "TAVILY_API_KEY": settings.tavily_api_key,
        "TAVILY_BASE_URL": settings.tavily_base_url,
        "TAVILY_PROXY_ADDRESS": settings.tavily_proxy_address,
        "LOCAL_PROXY_ADDRESS": settings.local_proxy_address,
        "TAVILY_MAX_RESULTS": str(settings.tavily_max_results),
        "TAVILY_SEARCH_DEPTH": settings.tavily_search_depth,
        "TAVILY_TOPIC": settings.tavily_topic,
        "TAVILY_FETCH_MAX_CHARS": str(settings.tavily_fetch_max_chars),
    }
    try:
        made = TavilySettings.from_values(values)
        if made is None:  # check the rest all the same
            TavilySettings.from_values({**values, "TAVILY_API_KEY": "unset"})
    except ValueError as exc:
        raise SystemExit(f"llm-dialect-proxy: {exc}") from None
    return made

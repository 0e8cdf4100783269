"""The Tavily settings: one frozen value, validated when made, with the key kept out of reprs.

Sans-I/O. ``TavilySettings.from_values`` reads the names the Go claude-proxy reads (issue 12)
from a mapping the caller hands in (config.py passes the environment; it stays the only
reader of ``os.environ``), with the providers file's ``tavily_key``/``tavily_url`` under
them. Bad values raise ``ValueError`` with a message fit to stop the server at start.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, cast
from urllib.parse import urlsplit

SearchDepth = Literal["basic", "advanced"]
Topic = Literal["general", "news", "finance"]

DEFAULT_BASE_URL = "https://api.tavily.com"
MAX_RESULTS_LIMIT = 20  # Tavily's own upper bound for max_results
MIN_FETCH_CHARS = 1000
_DEPTHS: tuple[SearchDepth, ...] = ("basic", "advanced")
_TOPICS: tuple[Topic, ...] = ("general", "news", "finance")


@dataclass(frozen=True, slots=True)
class TavilySettings:
    """``proxy``: an outbound HTTP proxy for Tavily calls only. ``timeout``: seconds for one
    Tavily call, connect to last byte."""

    api_key: str = field(repr=False)
    base_url: str = DEFAULT_BASE_URL
    proxy: str | None = field(default=None, repr=False)  # may carry user:password
    max_results: int = 5
    search_depth: SearchDepth = "basic"
    topic: Topic = "general"
    fetch_max_chars: int = 50_000
    timeout: float = 30.0

    def __post_init__(self) -> None:
        if not self.api_key.strip():
            raise ValueError("TAVILY_API_KEY must not be empty.")
        if any(c.isspace() for c in self.api_key):
            raise ValueError("TAVILY_API_KEY must not contain spaces or line breaks.")
        _check_url("TAVILY_BASE_URL", self.base_url)
        if self.proxy is not None:
            _check_url("TAVILY_PROXY_ADDRESS", self.proxy)
        _check_int("TAVILY_MAX_RESULTS", self.max_results, 1, MAX_RESULTS_LIMIT)
        _check_int("TAVILY_FETCH_MAX_CHARS", self.fetch_max_chars, MIN_FETCH_CHARS, None)
        if self.search_depth not in _DEPTHS:
            raise ValueError(f"TAVILY_SEARCH_DEPTH must be basic or advanced, "
                             f"not {self.search_depth!r}.")
        if self.topic not in _TOPICS:
            raise ValueError(f"TAVILY_TOPIC must be general, news or finance, not {self.topic!r}.")
        if not self.timeout > 0:
            raise ValueError(f"The Tavily timeout must be positive, not {self.timeout!r}.")

    @classmethod
    def from_values(cls, values: Mapping[str, str], *, file_key: str | None = None,
                    file_url: str | None = None) -> TavilySettings | None:
        """Settings from ``TAVILY_*`` (and ``LOCAL_PROXY_ADDRESS``) in ``values``, over the
        providers file's ``tavily_key`` and ``tavily_url``; None when no key is set anywhere
        (the web tools are then off). Empty strings count as unset."""

        def get(name: str) -> str | None:
            value = values.get(name, "").strip()
            return value or None

        key = get("TAVILY_API_KEY") or (file_key or "").strip()
        if not key:
            return None
        # Checked by __post_init__, which names the variable in its message.
        depth = cast(SearchDepth, (get("TAVILY_SEARCH_DEPTH") or "basic").lower())
        topic = cast(Topic, (get("TAVILY_TOPIC") or "general").lower())
        return cls(
            api_key=key,
            base_url=(get("TAVILY_BASE_URL") or (file_url or "").strip()
                      or DEFAULT_BASE_URL).rstrip("/"),
            proxy=get("TAVILY_PROXY_ADDRESS") or get("LOCAL_PROXY_ADDRESS"),
            max_results=_int("TAVILY_MAX_RESULTS", get("TAVILY_MAX_RESULTS"), 5),
            search_depth=depth,
            topic=topic,
            fetch_max_chars=_int("TAVILY_FETCH_MAX_CHARS", get("TAVILY_FETCH_MAX_CHARS"), 50_000),
        )

    def scrub(self, text: str) -> str:
        """``text`` with the key (and the proxy address, which may hold a password) blanked:
        for anything about a Tavily call that may reach a log or a model."""
        text = text.replace(self.api_key, "[tavily key]")
        return text.replace(self.proxy, "[tavily proxy]") if self.proxy else text


def _int(name: str, raw: str | None, default: int) -> int:
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {raw!r}.") from None


def _check_int(name: str, value: int, low: int, high: int | None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low \
            or (high is not None and value > high):
        bound = f"from {low} to {high}" if high is not None else f"at least {low}"
        raise ValueError(f"{name} must be a whole number {bound}, not {value!r}.")


def _check_url(name: str, url: str) -> None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ValueError(f"{name} is not a valid URL.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        # Not the value itself: a proxy URL may carry a password.
        raise ValueError(f"{name} must be an http:// or https:// URL with a host.")

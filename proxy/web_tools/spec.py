"""What the client asked of the web tools, and the two functions the backend model is offered.

Sans-I/O. Reads Anthropic's server tool definitions (``web_search_20250305`` and later,
``web_fetch_20250910`` and later: ``max_uses``, ``allowed_domains``/``blocked_domains``,
``user_location``, ``max_content_tokens``, ``url_sources``) and OpenAI's
``web_search_options`` (``search_context_size``, ``user_location``). Leniently: unknown fields
are ignored, as new tool versions add them; only what would make the call mean something
else (both domain lists at once, a non-positive ``max_uses``, a malformed list) is refused
with ``InvalidRequest``, as Anthropic refuses it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from proxy.canonical import Tool
from proxy.errors import InvalidRequest

SEARCH: Final = "web_search"
FETCH: Final = "web_fetch"


@dataclass(frozen=True, slots=True)
class UserLocation:
    """Anthropic's and OpenAI's approximate location; ``country`` is ISO 3166-1 alpha-2."""

    city: str | None = None
    region: str | None = None
    country: str | None = None
    timezone: str | None = None


@dataclass(frozen=True, slots=True)
class SourceFilter:
    """One ``url_sources`` entry: ``all``, ``none``, or ``only``/``except`` the named tools."""

    mode: Literal["all", "none", "only", "except"] = "all"
    tools: frozenset[str] = frozenset()

    def admits(self, tool_name: str) -> bool:
        if self.mode == "all":
            return True
        if self.mode == "none":
            return False
        return (tool_name in self.tools) == (self.mode == "only")


@dataclass(frozen=True, slots=True)
class UrlSources:
    """Which parts of the conversation make a URL fetchable (all of them by default)."""

    user_input: bool = True
    client_tool_results: SourceFilter = SourceFilter()
    server_tool_results: SourceFilter = SourceFilter()


@dataclass(frozen=True, slots=True)
class SearchSpec:
    max_uses: int | None = None  # None: no limit but the loop's own
    allowed_domains: tuple[str, ...] = ()
    blocked_domains: tuple[str, ...] = ()
    user_location: UserLocation | None = None
    max_results: int | None = None  # None: the settings' TAVILY_MAX_RESULTS


@dataclass(frozen=True, slots=True)
class FetchSpec:
    max_uses: int | None = None
    allowed_domains: tuple[str, ...] = ()
    blocked_domains: tuple[str, ...] = ()
    max_content_tokens: int | None = None
    url_sources: UrlSources = UrlSources()


@dataclass(frozen=True, slots=True)
class WebToolsSpec:
    search: SearchSpec | None = None
    fetch: FetchSpec | None = None

    def __bool__(self) -> bool:
        return self.search is not None or self.fetch is not None


def web_tool_kind(tool: Any) -> str | None:
    """``web_search`` or ``web_fetch`` for an Anthropic server tool definition, else None."""
    kind = tool.get("type") if isinstance(tool, dict) else None
    if isinstance(kind, str):
        if kind.startswith("web_search_"):
            return SEARCH
        if kind.startswith("web_fetch_"):
            return FETCH
    return None


def parse_anthropic_tools(tools: Sequence[Any]) -> WebToolsSpec:
    """The web tools among a Messages request's raw ``tools`` (other entries are left to the
    request parser). A custom tool named like a server tool is refused, as Anthropic refuses
    duplicate names: the model could not tell them apart."""
    search: SearchSpec | None = None
    fetch: FetchSpec | None = None
    custom_names = {t.get("name") for t in tools
                    if isinstance(t, dict) and t.get("type") in (None, "custom")}
    for i, tool in enumerate(tools):
        kind = web_tool_kind(tool)
        if kind is None:
            continue
        path = f"tools.{i}"
        if kind in custom_names:
            raise InvalidRequest(f"{path}: the tool name {kind} is used twice.", param=path)
        if kind == SEARCH:
            search = _search_spec(tool, path)
        else:
            fetch = _fetch_spec(tool, path)
    return WebToolsSpec(search, fetch)


def parse_web_search_options(options: Any) -> SearchSpec:
    """OpenAI's ``web_search_options``. ``search_context_size`` sets how many results the
    model gets: low 3, high 10, medium (the default) the configured number."""
    if not isinstance(options, dict):
        raise InvalidRequest("web_search_options: must be an object.", param="web_search_options")
    size = options.get("search_context_size", "medium")
    if size not in ("low", "medium", "high"):
        raise InvalidRequest("web_search_options.search_context_size: must be low, medium or "
                             "high.", param="web_search_options.search_context_size")
    location = options.get("user_location")
    approximate = location.get("approximate") if isinstance(location, dict) else None
    return SearchSpec(
        user_location=_location(approximate, "web_search_options.user_location.approximate"),
        max_results={"low": 3, "high": 10}.get(size))


def model_functions(spec: WebToolsSpec) -> tuple[Tool, ...]:
    """The web tools as ordinary functions for a backend model, with the limits the client set
    written into their descriptions so the model does not waste calls on refusals."""
    tools: list[Tool] = []
    if spec.search is not None:
        tools.append(Tool(SEARCH, _search_description(spec.search), {
            "type": "object", "properties": {"query": {
                "type": "string", "description": "What to search the web for."}},
            "required": ["query"]}))
    if spec.fetch is not None:
        tools.append(Tool(FETCH, _fetch_description(spec.fetch), {
            "type": "object", "properties": {"url": {
                "type": "string", "description": "The http(s) URL of the page to read."}},
            "required": ["url"]}))
    return tuple(tools)


def _search_description(spec: SearchSpec) -> str:
    text = ("Search the web. Returns the title, URL, age and a text snippet of each result. "
            "Use it for current events and for anything you are not sure of; cite the URLs "
            "of the results you use.")
    if spec.allowed_domains:
        text += " Results come only from: " + ", ".join(spec.allowed_domains) + "."
    if spec.blocked_domains:
        text += " Results never come from: " + ", ".join(spec.blocked_domains) + "."
    if spec.max_uses is not None:
        text += f" At most {spec.max_uses} searches in this answer."
    return text


def _fetch_description(spec: FetchSpec) -> str:
    text = ("Read the text of a web page. Only URLs that already appeared in the conversation "
            "(given by the user or found by an earlier web_search or web_fetch) can be read; "
            "copy them exactly.")
    if spec.allowed_domains:
        text += " Only these domains: " + ", ".join(spec.allowed_domains) + "."
    if spec.blocked_domains:
        text += " Never these domains: " + ", ".join(spec.blocked_domains) + "."
    if spec.max_uses is not None:
        text += f" At most {spec.max_uses} pages in this answer."
    return text


# --- parsing ------------------------------------------------------------------------------


def _search_spec(tool: dict[str, Any], path: str) -> SearchSpec:
    allowed, blocked = _domain_lists(tool, path)
    return SearchSpec(max_uses=_max_uses(tool, path), allowed_domains=allowed,
                      blocked_domains=blocked,
                      user_location=_location(tool.get("user_location"), f"{path}.user_location"))


def _fetch_spec(tool: dict[str, Any], path: str) -> FetchSpec:
    allowed, blocked = _domain_lists(tool, path)
    tokens = tool.get("max_content_tokens")
    if tokens is not None and (isinstance(tokens, bool) or not isinstance(tokens, int)
                               or tokens < 1):
        raise InvalidRequest(f"{path}.max_content_tokens: must be a positive integer.",
                             param=f"{path}.max_content_tokens")
    return FetchSpec(max_uses=_max_uses(tool, path), allowed_domains=allowed,
                     blocked_domains=blocked, max_content_tokens=tokens,
                     url_sources=_url_sources(tool.get("url_sources"), f"{path}.url_sources"))


def _max_uses(tool: dict[str, Any], path: str) -> int | None:
    value = tool.get("max_uses")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidRequest(f"{path}.max_uses: must be a positive integer.",
                             param=f"{path}.max_uses")
    return value


def _domain_lists(tool: dict[str, Any], path: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    allowed = _domains(tool.get("allowed_domains"), f"{path}.allowed_domains")
    blocked = _domains(tool.get("blocked_domains"), f"{path}.blocked_domains")
    if allowed and blocked:
        raise InvalidRequest(f"{path}: allowed_domains and blocked_domains cannot be used "
                             "together.", param=f"{path}.allowed_domains")
    return allowed, blocked


def _domains(value: Any, path: str) -> tuple[str, ...]:
    """Domains as Anthropic takes them (``example.com``, ``docs.example.com``,
    ``example.com/blog``), lowercased, a scheme or trailing slash a client added dropped."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(d, str) for d in value):
        raise InvalidRequest(f"{path}: must be an array of strings.", param=path)
    out = []
    for domain in value:
        cleaned = domain.strip().lower().removeprefix("https://").removeprefix("http://")
        cleaned = cleaned.rstrip("/")
        if not cleaned or any(c.isspace() for c in cleaned):
            raise InvalidRequest(f"{path}: {domain!r} is not a domain.", param=path)
        out.append(cleaned)
    return tuple(dict.fromkeys(out))


def _location(value: Any, path: str) -> UserLocation | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidRequest(f"{path}: must be an object.", param=path)
    fields = {}
    for name in ("city", "region", "country", "timezone"):
        item = value.get(name)
        if item is not None and not isinstance(item, str):
            raise InvalidRequest(f"{path}.{name}: must be a string.", param=f"{path}.{name}")
        fields[name] = (item.strip() or None) if isinstance(item, str) else None
    country = fields["country"]
    return UserLocation(city=fields["city"], region=fields["region"],
                        country=country.upper() if country else None,
                        timezone=fields["timezone"])


def _url_sources(value: Any, path: str) -> UrlSources:
    if value is None:
        return UrlSources()
    if not isinstance(value, dict):
        raise InvalidRequest(f"{path}: must be an object.", param=path)
    user = _source_filter(value.get("user_input"), f"{path}.user_input", tools_allowed=False)
    return UrlSources(
        user_input=user.mode != "none",
        client_tool_results=_source_filter(value.get("client_tool_results"),
                                           f"{path}.client_tool_results"),
        server_tool_results=_source_filter(value.get("server_tool_results"),
                                           f"{path}.server_tool_results"))


def _source_filter(value: Any, path: str, *, tools_allowed: bool = True) -> SourceFilter:
    if value is None:
        return SourceFilter()
    mode = value.get("type") if isinstance(value, dict) else None
    modes = ("all", "none", "only", "except") if tools_allowed else ("all", "none")
    if mode not in modes:
        raise InvalidRequest(f"{path}.type: must be one of {', '.join(modes)}.",
                             param=f"{path}.type")
    if mode == "all" or mode == "none":
        return SourceFilter(mode)
    tools = value.get("tools")
    if not isinstance(tools, list) or not all(
            isinstance(t, dict) and isinstance(t.get("name"), str) for t in tools):
        raise InvalidRequest(f"{path}.tools: must be an array of tool references.",
                             param=f"{path}.tools")
    return SourceFilter("only" if mode == "only" else "except",
                        frozenset(t["name"] for t in tools))

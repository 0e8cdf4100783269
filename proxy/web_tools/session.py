"""One client response's web tool state: uses left, the URLs web_fetch may fetch, the counts.

Sans-I/O. The loop that runs the tools makes one per client response,
``WebToolSession(spec, settings, request.messages)``, and drives it in two steps per call
the model makes:

    planned = session.plan(name, arguments)      # checks: input, max_uses, the URL rule
    # show the client server_tool_use(server_tool_id(message_id, n), planned.tool_input);
    # then, if planned.call:
    #   a FetchCall's host goes through resolve.host_refusal first (an error code or None)
    #   the SearchCall / FetchCall goes to TavilyClient.search / .extract
    outcome = session.finish(planned, answer_or_failure_or_refusal, retrieved_at=...)
    # show the client the result block (outcome.kind, outcome.result); give the model
    # outcome.model_text as the function's result

``session.usage`` is what ``usage.server_tool_use`` reports. ``max_uses`` counts the calls
sent to Tavily (a failed one too, so a model cannot hammer a failing service); the usage
counts only the ones that brought a result.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import orjson

from proxy.canonical import Message, ServerToolError, ServerToolResult, ServerToolUse
from proxy.web_tools.results import (
    TavilyFailure,
    error_text,
    failure_code,
    fetch_page,
    fetch_text,
    search_hits,
    search_text,
)
from proxy.web_tools.settings import MAX_RESULTS_LIMIT, SearchDepth, TavilySettings, Topic
from proxy.web_tools.spec import FETCH, SEARCH, UrlSources, WebToolsSpec
from proxy.web_tools.urls import conversation_urls, fetch_refusal, normalize_url, result_urls

OWN_ID_PREFIX = "srvtoolu_ldp_"
MAX_QUERY_CHARS = 400  # Tavily refuses longer queries
CHARS_PER_TOKEN = 4  # for web_fetch's max_content_tokens, which counts tokens, roughly

ToolName = Literal["web_search", "web_fetch"]
ResultKind = Literal["web_search_tool_result", "web_fetch_tool_result"]


@dataclass(frozen=True, slots=True)
class SearchCall:
    """A Tavily ``/search`` to make."""

    query: str
    max_results: int
    search_depth: SearchDepth
    topic: Topic
    include_domains: tuple[str, ...] = ()
    exclude_domains: tuple[str, ...] = ()
    country: str | None = None  # Tavily's country name, e.g. "united states"


@dataclass(frozen=True, slots=True)
class FetchCall:
    """A Tavily ``/extract`` of one URL (normalised); ``host`` for the DNS check."""

    url: str
    host: str
    max_chars: int


@dataclass(frozen=True, slots=True)
class Planned:
    """A model's call of a web tool, checked. ``tool_input`` is what the client's
    ``server_tool_use`` block shows. Exactly one of ``call`` (what to ask Tavily) and
    ``error`` (why nothing will be asked) is set."""

    name: ToolName
    tool_input: dict[str, Any]
    call: SearchCall | FetchCall | None = None
    error: ServerToolError | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """A finished call: the client's result block, and the function result for the model."""

    kind: ResultKind
    result: ServerToolResult
    model_text: str

    @property
    def is_error(self) -> bool:
        return isinstance(self.result, ServerToolError)


class WebToolSession:
    def __init__(self, spec: WebToolsSpec, settings: TavilySettings,
                 messages: Sequence[Message] = (), known_urls: Iterable[str] = ()) -> None:
        """``messages``: the request's conversation, whose URLs become fetchable as the fetch
        tool's ``url_sources`` allow; ``known_urls``: more of them, already found."""
        self.spec, self.settings = spec, settings
        self._sources = spec.fetch.url_sources if spec.fetch is not None else UrlSources()
        self._known = conversation_urls(messages, self._sources)
        self.learn(known_urls)
        self._sent = {SEARCH: 0, FETCH: 0}
        self._done = {SEARCH: 0, FETCH: 0}

    def handles(self, name: str) -> bool:
        """Whether a function call of this name is ours to run (else it is the client's)."""
        return ((name == SEARCH and self.spec.search is not None)
                or (name == FETCH and self.spec.fetch is not None))

    def learn(self, urls: Iterable[str]) -> None:
        """More fetchable URLs (e.g. from server tool results earlier in the history)."""
        self._known.update(url for url in map(normalize_url, urls) if url is not None)

    @property
    def usage(self) -> ServerToolUse:
        return ServerToolUse(web_search_requests=self._done[SEARCH],
                             web_fetch_requests=self._done[FETCH])

    def plan(self, name: str, arguments: str | Mapping[str, Any]) -> Planned:
        """Check a call the model made; ``arguments`` as the model gave them (JSON text or
        an object). Counts against ``max_uses`` only when a Tavily call is planned."""
        if name not in (SEARCH, FETCH):
            raise ValueError(f"not a web tool: {name!r}")
        tool: ToolName = SEARCH if name == SEARCH else FETCH
        args = _arguments(arguments)
        key = "query" if tool == SEARCH else "url"
        value = args.get(key) if args is not None else None
        if not self.handles(tool) or not isinstance(value, str) or not value.strip():
            return Planned(tool, args or {}, error=ServerToolError("invalid_tool_input"))
        value = value.strip()
        shown = {key: value}
        spec = self.spec.search if tool == SEARCH else self.spec.fetch
        limit = spec.max_uses if spec is not None else None
        if limit is not None and self._sent[tool] >= limit:
            return Planned(tool, shown, error=ServerToolError("max_uses_exceeded"))
        planned = self._search(value) if tool == SEARCH else self._fetch(value)
        if planned.call is not None:
            self._sent[tool] += 1
        return planned

    def finish(self, planned: Planned,
               answer: Any | TavilyFailure | ServerToolError | None = None, *,
               retrieved_at: str | None = None) -> Outcome:
        """The outcome of a planned call: ``answer`` is Tavily's JSON, a ``TavilyFailure``, or
        a ``ServerToolError`` the loop decided (the DNS check); ignored when ``planned``
        already holds an error."""
        kind: ResultKind = "web_search_tool_result" if planned.name == SEARCH \
            else "web_fetch_tool_result"
        error = planned.error or (answer if isinstance(answer, ServerToolError) else None)
        if error is None and isinstance(answer, TavilyFailure):
            error = ServerToolError(failure_code(planned.name, answer))
        if error is None and isinstance(planned.call, SearchCall) and self.spec.search:
            hits = search_hits(answer, allowed=self.spec.search.allowed_domains,
                               blocked=self.spec.search.blocked_domains)
            if hits is not None:
                return self._found(kind, SEARCH, hits, search_text(planned.call.query, hits))
            error = ServerToolError("unavailable")
        if error is None and isinstance(planned.call, FetchCall):
            page = fetch_page(answer, planned.call.url, max_chars=planned.call.max_chars,
                              retrieved_at=retrieved_at)
            if not isinstance(page, ServerToolError):
                return self._found(kind, FETCH, page[0], fetch_text(page[0], cut=page[1]))
            error = page
        error = error or ServerToolError("unavailable")
        return Outcome(kind, error, error_text(error))

    def _found(self, kind: ResultKind, tool: ToolName, result: ServerToolResult,
               text: str) -> Outcome:
        self._done[tool] += 1
        if self._sources.server_tool_results.admits(tool):
            self._known |= result_urls(result)
        return Outcome(kind, result, text)

    def _search(self, query: str) -> Planned:
        spec, settings = self.spec.search, self.settings
        assert spec is not None
        shown = {"query": query}
        if len(query) > MAX_QUERY_CHARS:
            return Planned(SEARCH, shown, error=ServerToolError("query_too_long"))
        location = spec.user_location
        country = _COUNTRIES.get(location.country or "") if location else None
        return Planned(SEARCH, shown, call=SearchCall(
            query=query,
            max_results=min(spec.max_results or settings.max_results, MAX_RESULTS_LIMIT),
            search_depth=settings.search_depth, topic=settings.topic,
            # Tavily takes bare domains; a path rule ("example.com/blog") is applied to the
            # results afterwards, and a blocked path must not exclude its whole domain.
            include_domains=tuple(dict.fromkeys(d.partition("/")[0]
                                                for d in spec.allowed_domains)),
            exclude_domains=tuple(d for d in spec.blocked_domains if "/" not in d),
            country=country if settings.topic == "general" else None))

    def _fetch(self, url: str) -> Planned:
        spec = self.spec.fetch
        assert spec is not None
        shown = {"url": url}
        refusal = fetch_refusal(url, known=self._known, spec=spec)
        normal = normalize_url(url)
        if refusal is not None or normal is None:
            return Planned(FETCH, shown, error=ServerToolError(refusal or "invalid_tool_input"))
        max_chars = self.settings.fetch_max_chars
        if spec.max_content_tokens is not None:
            max_chars = min(max_chars, spec.max_content_tokens * CHARS_PER_TOKEN)
        return Planned(FETCH, shown,
                       call=FetchCall(normal, urlsplit(normal).hostname or "", max_chars))


def server_tool_id(message_id: str, n: int) -> str:
    """The id of the ``n``-th server_tool_use block of the response ``message_id``: unique in
    a conversation, in Anthropic's ``srvtoolu_`` form, and marked as the proxy's own, so that
    a later turn can tell our result blocks (whose ``encrypted_content`` is readable text)
    from Anthropic's (whose is not)."""
    tail = re.sub(r"[^A-Za-z0-9]", "", message_id)[-24:]
    return f"{OWN_ID_PREFIX}{tail}_{n}"


def is_own_tool_id(tool_id: str) -> bool:
    return tool_id.startswith(OWN_ID_PREFIX)


def _arguments(arguments: str | Mapping[str, Any]) -> dict[str, Any] | None:
    if isinstance(arguments, Mapping):
        return dict(arguments)
    try:
        value = orjson.loads(arguments) if arguments.strip() else {}
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


# ISO 3166-1 alpha-2 -> Tavily's ``country`` (its own lowercase English names). Only names
# we are sure Tavily takes: a name it does not know fails the whole search, while a country
# left out only loses a ranking hint.
_COUNTRIES = {
    "AR": "argentina", "AT": "austria", "AU": "australia", "BD": "bangladesh",
    "BE": "belgium", "BR": "brazil", "CA": "canada", "CH": "switzerland", "CL": "chile",
    "CN": "china", "CO": "colombia", "DE": "germany", "DK": "denmark", "EG": "egypt",
    "ES": "spain", "FI": "finland", "FR": "france", "GB": "united kingdom", "GR": "greece",
    "HU": "hungary", "ID": "indonesia", "IE": "ireland", "IL": "israel", "IN": "india",
    "IT": "italy", "JP": "japan", "KE": "kenya", "KR": "south korea", "MX": "mexico",
    "MY": "malaysia", "NG": "nigeria", "NL": "netherlands", "NO": "norway",
    "NZ": "new zealand", "PE": "peru", "PH": "philippines", "PK": "pakistan", "PL": "poland",
    "PT": "portugal", "RO": "romania", "SA": "saudi arabia", "SE": "sweden",
    "SG": "singapore", "TH": "thailand", "TW": "taiwan", "UA": "ukraine",
    "AE": "united arab emirates", "US": "united states", "VN": "vietnam",
    "ZA": "south africa",
}

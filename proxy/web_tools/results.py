"""Tavily's answers as canonical result content, and the text the backend model reads.

Sans-I/O. A search becomes ``WebSearchHit``s: ``encrypted_content`` is Tavily's snippet as
is (not encrypted: it is the text the model was given, so that a later turn that sends the
block back can give the model the same text), ``page_age`` Tavily's ``published_date`` when it
has one (news results do), else null. An extract becomes a ``WebFetchPage``: the page text cut
to the character limit. A failed call (``TavilyFailure``, or a refusal decided here) becomes a
``ServerToolError`` with one of the SDK's error codes. The model sees a small JSON object in
each case, errors included, so that it can react to them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import orjson

from proxy.canonical import ServerToolError, WebFetchPage, WebSearchHit
from proxy.web_tools.urls import domain_matches, normalize_url

FailureKind = Literal["auth", "quota", "rate_limit", "unavailable", "timeout", "bad_request",
                      "bad_answer"]


@dataclass(frozen=True, slots=True)
class TavilyFailure:
    """A Tavily call that did not give a usable answer. ``detail`` is safe to log: the key
    is never in it (``TavilySettings.scrub``)."""

    kind: FailureKind
    status: int | None = None
    detail: str = ""


# What a failed call tells the client and the model. A bad key or a spent plan is no
# fault of the model's and no retry mends it: "unavailable", as Anthropic says of an outage.
_SEARCH_CODES: dict[FailureKind, str] = {
    "auth": "unavailable", "quota": "unavailable", "rate_limit": "too_many_requests",
    "unavailable": "unavailable", "timeout": "unavailable", "bad_request": "invalid_tool_input",
    "bad_answer": "unavailable"}
_FETCH_CODES: dict[FailureKind, str] = {**_SEARCH_CODES, "bad_request": "url_not_accessible"}

_EXPLANATIONS = {
    "max_uses_exceeded": "The limit of calls of this tool for this answer is spent. Answer "
                         "with what you have.",
    "too_many_requests": "The search service is rate limited right now.",
    "unavailable": "The search service is unavailable right now.",
    "invalid_tool_input": "The arguments were not valid.",
    "query_too_long": "The query is too long; keep it under 400 characters.",
    "url_too_long": "The URL is too long.",
    "url_not_allowed": "This URL may not be fetched (a private or non-public address, a "
                       "non-http(s) scheme, or a domain the user excluded).",
    "url_not_in_prior_context": "Only URLs that already appeared in the conversation (from "
                                "the user or from earlier search or fetch results) can be "
                                "fetched. Search for the page first.",
    "url_not_accessible": "The page could not be fetched.",
}


def failure_code(tool: Literal["web_search", "web_fetch"], failure: TavilyFailure) -> str:
    return (_SEARCH_CODES if tool == "web_search" else _FETCH_CODES)[failure.kind]


def search_hits(answer: Any, *, allowed: tuple[str, ...] = (), blocked: tuple[str, ...] = ()
                ) -> tuple[WebSearchHit, ...] | None:
    """Hits from a Tavily ``/search`` answer, with the domain lists applied again (Tavily
    treats them as hints; the client asked for a rule). None if the answer is malformed."""
    results = answer.get("results") if isinstance(answer, dict) else None
    if not isinstance(results, list):
        return None
    hits = []
    for item in results:
        if not isinstance(item, dict):
            continue
        url, title = item.get("url"), item.get("title")
        if not isinstance(url, str) or normalize_url(url) is None:
            continue
        if (blocked and domain_matches(url, blocked)) \
                or (allowed and not domain_matches(url, allowed)):
            continue
        snippet = item.get("content")
        age = item.get("published_date")
        hits.append(WebSearchHit(url=url, title=title if isinstance(title, str) and title else url,
                                 encrypted_content=snippet if isinstance(snippet, str) else "",
                                 page_age=age if isinstance(age, str) and age else None))
    return tuple(hits)


def fetch_page(answer: Any, url: str, *, max_chars: int, retrieved_at: str | None = None
               ) -> tuple[WebFetchPage, bool] | ServerToolError:
    """The page from a Tavily ``/extract`` answer for ``url``, its text cut to ``max_chars``,
    and whether it was cut; ``url_not_accessible`` if Tavily could not read it,
    ``unavailable`` if the answer is malformed."""
    results = answer.get("results") if isinstance(answer, dict) else None
    if not isinstance(results, list):
        return ServerToolError("unavailable")
    for item in results:
        if isinstance(item, dict) and isinstance(item.get("raw_content"), str):
            title, text = item.get("title"), item["raw_content"]
            page = WebFetchPage(url=url, text=text[:max_chars],
                                title=title if isinstance(title, str) and title else None,
                                retrieved_at=retrieved_at)
            return page, len(text) > max_chars
    return ServerToolError("url_not_accessible")


def search_text(query: str | None, hits: tuple[WebSearchHit, ...]) -> str:
    """The function result a backend model reads for a search (``query`` None: not known)."""
    body: dict[str, Any] = {} if query is None else {"query": query}
    body["results"] = [{"title": hit.title, "url": hit.url, "page_age": hit.page_age,
                        "content": hit.encrypted_content} for hit in hits]
    return _json(body)


def fetch_text(page: WebFetchPage, *, cut: bool) -> str:
    """The function result a backend model reads for a fetched page; ``cut`` says the text
    was longer than the limit."""
    body: dict[str, Any] = {"url": page.url, "title": page.title, "content": page.text}
    if cut:
        body["note"] = f"Only the first {len(page.text)} characters of the page are shown."
    return _json(body)


def error_text(error: ServerToolError) -> str:
    """The function result a backend model reads for a failed or refused call."""
    return _json({"error": error.error_code,
                  "message": _EXPLANATIONS.get(error.error_code, "The call failed.")})


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()

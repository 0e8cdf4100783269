"""The Tavily HTTP client: ``/search`` and ``/extract``, over aiohttp.

Tavily takes its key as ``Authorization: Bearer <key>`` (its Python client does the same) and
JSON bodies; it answers errors as ``{"detail": {"error": "..."}}`` with 400 (bad input), 401
(bad key), 403/432/433 (forbidden, plan or pay-as-you-go limit spent), 429 (rate limit) and
5xx. Every way a call can go wrong comes back as a ``TavilyFailure`` value, never as an
exception, so the tool loop turns it into an error block the model can react to. The key
never reaches a log or a failure's detail; ``TAVILY_PROXY_ADDRESS`` routes these calls, and
only these, through an HTTP proxy.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
import orjson

from proxy.web_tools.results import FailureKind, TavilyFailure
from proxy.web_tools.session import FetchCall, SearchCall
from proxy.web_tools.settings import TavilySettings

log = logging.getLogger("proxy.web_tools")
_DETAIL_CHARS = 300
_STATUS_KINDS: dict[int, FailureKind] = {400: "bad_request", 401: "auth", 403: "auth",
                                         422: "bad_request", 429: "rate_limit", 432: "quota",
                                         433: "quota"}


class TavilyClient:
    """One per app. It owns its ClientSession unless one is handed in (which it then leaves
    open): ``async with TavilyClient(settings) as tavily: ...`` or ``await tavily.close()``."""

    def __init__(self, settings: TavilySettings,
                 session: aiohttp.ClientSession | None = None) -> None:
        self.settings = settings
        self._session = session
        self._owns_session = session is None
        self._headers = {"Authorization": f"Bearer {settings.api_key}",
                         "Content-Type": "application/json"}
        self._timeout = aiohttp.ClientTimeout(total=settings.timeout)

    async def __aenter__(self) -> TavilyClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
        self._session = None

    async def search(self, call: SearchCall) -> dict[str, Any] | TavilyFailure:
        body: dict[str, Any] = {
            "query": call.query, "search_depth": call.search_depth, "topic": call.topic,
            "max_results": call.max_results, "include_answer": False,
            "include_raw_content": False, "include_images": False}
        if call.include_domains:
            body["include_domains"] = list(call.include_domains)
        if call.exclude_domains:
            body["exclude_domains"] = list(call.exclude_domains)
        if call.country:
            body["country"] = call.country
        return await self._post("/search", body)

    async def extract(self, call: FetchCall) -> dict[str, Any] | TavilyFailure:
        # Markdown keeps a page's links, which the model may then fetch in turn.
        return await self._post("/extract", {"urls": [call.url], "format": "markdown",
                                             "extract_depth": "basic"})

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any] | TavilyFailure:
        outcome = await self._send(path, orjson.dumps(body))
        if isinstance(outcome, TavilyFailure):
            log.warning("tavily %s failed: %s%s %s", path, outcome.kind,
                        f" {outcome.status}" if outcome.status else "", outcome.detail)
        return outcome

    async def _send(self, path: str, data: bytes) -> dict[str, Any] | TavilyFailure:
        if self._session is None:
            self._session = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
            self._owns_session = True
        url = self.settings.base_url.rstrip("/") + path
        try:
            async with self._session.post(url, data=data, headers=self._headers,
                                          proxy=self.settings.proxy, timeout=self._timeout
                                          ) as response:
                raw = await response.read()
                status = response.status
        except TimeoutError:
            return TavilyFailure("timeout", detail=f"no answer in {self.settings.timeout:g} s")
        except aiohttp.ClientError as exc:
            return TavilyFailure("unavailable", detail=self._safe(type(exc).__name__ + ": "
                                                                  + str(exc)))
        if status != 200:
            kind = _STATUS_KINDS.get(status, "unavailable")
            return TavilyFailure(kind, status, self._safe(_detail(raw)))
        try:
            answer = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return TavilyFailure("bad_answer", status, "the answer is not JSON")
        if not isinstance(answer, dict):
            return TavilyFailure("bad_answer", status, "the answer is not a JSON object")
        return answer

    def _safe(self, text: str) -> str:
        return self.settings.scrub(text)[:_DETAIL_CHARS]


def _detail(raw: bytes) -> str:
    """Tavily's error message (``detail.error``, or ``detail`` when it is a string)."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw[:_DETAIL_CHARS].decode("utf-8", "replace")
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, dict):
        detail = detail.get("error")
    return detail if isinstance(detail, str) else ""

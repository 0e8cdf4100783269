"""A fake Tavily API on 127.0.0.1: ``POST /search`` and ``POST /extract`` as the real one
shapes them, with its auth and errors, slow answers on demand, and a record of every call.

Shapes (docs.tavily.com API reference, and tavily-python's tests): the key comes as
``Authorization: Bearer <key>`` (or, in older clients, as ``api_key`` in the body); errors are
``{"detail": {"error": "<message>"}}`` with 400 (bad input: a query over 400 characters, no
``urls``), 401 (bad key), 429 (rate limit), 432 (plan limit), 5xx; a search answers
``{query, follow_up_questions, answer, images, results: [{title, url, content, score,
raw_content, published_date?}], response_time, request_id}``; an extract answers
``{results: [{url, raw_content, images}], failed_results: [{url, error}], response_time,
request_id}``.

Use the ``fake_tavily`` fixture; set ``results`` (search hits), ``pages`` (URL -> page text),
``fail_next(status)``, ``delay`` (seconds before every answer) or ``raw_next(bytes)``.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from aiohttp import web

KEY = "tvly-test-0123456789abcdef"
_ERRORS = {400: "Bad request.", 401: "Unauthorized: missing or invalid API key.",
           429: "Your request has been blocked due to excessive requests.",
           432: "This request exceeds your plan's set usage limit.",
           500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}


@dataclass
class Call:
    path: str
    headers: dict[str, str]
    body: Any


def default_results(query: str) -> list[dict[str, Any]]:
    slug = "-".join(query.lower().split())[:40] or "empty"
    return [{"title": f"{query} ({n})", "url": f"https://site{n}.example.com/{slug}",
             "content": f"Snippet {n} about {query}.", "score": round(0.9 - n / 10, 2),
             "raw_content": None} for n in (1, 2, 3)]


class FakeTavily:
    def __init__(self, api_key: str = KEY) -> None:
        self.api_key = api_key
        self.calls: list[Call] = []
        self.results: list[dict[str, Any]] | None = None  # None: made up from the query
        self.pages: dict[str, str] = {}
        self.delay = 0.0
        self.base_url = ""
        self._failures: list[tuple[int, bytes | None]] = []
        self._raw: list[bytes] = []
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        app = web.Application()
        app.router.add_post("/search", self._search)
        app.router.add_post("/extract", self._extract)
        self.app = app

    def fail_next(self, status: int, body: bytes | None = None, times: int = 1) -> None:
        """The next ``times`` calls answer ``status`` (with Tavily's error body by default)."""
        self._failures += [(status, body)] * times

    def raw_next(self, body: bytes) -> None:
        """The next call answers 200 with these bytes (a malformed answer)."""
        self._raw.append(body)

    async def start(self) -> str:
        self._runner = web.AppRunner(self.app, handler_cancellation=True, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- handlers --

    async def _search(self, request: web.Request) -> web.Response:
        early = await self._common(request)
        if isinstance(early, web.Response):
            return early
        query = early.get("query")
        if not isinstance(query, str) or not query.strip():
            return _error(400, "Query is missing.")
        if len(query) > 400:
            return _error(400, "Query is too long. Max query length is 400 characters.")
        max_results = early.get("max_results", 5)
        if not isinstance(max_results, int) or not 0 <= max_results <= 20:
            return _error(400, "max_results must be between 0 and 20.")
        results = self.results if self.results is not None else default_results(query)
        return _json({"query": query, "follow_up_questions": None, "answer": None,
                      "images": [], "results": results[:max_results],
                      "response_time": 0.42, "request_id": self._request_id()})

    async def _extract(self, request: web.Request) -> web.Response:
        early = await self._common(request)
        if isinstance(early, web.Response):
            return early
        urls = early.get("urls")
        urls = [urls] if isinstance(urls, str) else urls
        if not isinstance(urls, list) or not urls:
            return _error(400, "urls is missing.")
        found = [{"url": u, "raw_content": self.pages[u], "images": []}
                 for u in urls if u in self.pages]
        failed = [{"url": u, "error": "Failed to fetch url"} for u in urls if u not in self.pages]
        return _json({"results": found, "failed_results": failed, "response_time": 0.31,
                      "request_id": self._request_id()})

    async def _common(self, request: web.Request) -> dict[str, Any] | web.Response:
        """Record the call, wait ``delay``, then answer scripted failures and auth."""
        raw = await request.read()
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = raw.decode("utf-8", "replace")
        self.calls.append(Call(request.path, {k.lower(): v for k, v in request.headers.items()},
                               body))
        if self.delay:
            await asyncio.sleep(self.delay)
        if self._failures:
            status, error_body = self._failures.pop(0)
            if error_body is not None:
                return web.Response(status=status, body=error_body,
                                    content_type="application/json")
            return _error(status, _ERRORS.get(status, "Error."))
        if self._raw:
            return web.Response(body=self._raw.pop(0), content_type="application/json")
        bearer = request.headers.get("Authorization", "")
        body_key = body.get("api_key") if isinstance(body, dict) else None
        if bearer != f"Bearer {self.api_key}" and body_key != self.api_key:
            return _error(401, _ERRORS[401])
        if not isinstance(body, dict):
            return _error(400, "The body must be a JSON object.")
        return body

    def _request_id(self) -> str:
        return f"req-fake-{next(self._ids):04d}"


def _json(body: dict[str, Any]) -> web.Response:
    return web.Response(body=orjson.dumps(body), content_type="application/json")


def _error(status: int, message: str) -> web.Response:
    return web.Response(status=status, body=orjson.dumps({"detail": {"error": message}}),
                        content_type="application/json")


@pytest.fixture
async def fake_tavily() -> AsyncIterator[FakeTavily]:
    fake = FakeTavily()
    await fake.start()
    yield fake
    await fake.stop()

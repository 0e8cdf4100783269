"""What every HTTP backend shares: its ClientSession, aiohttp failures as
``proxy.errors``, error bodies read and redacted, the response body as a byte source for
the read loop, and the same-dialect relay's POST.

The one place that knows how aiohttp fails, so every backend (and the relay) reports a
refused connection, a timeout or a cut stream the same way. One ClientSession per
process (``upstream_session``, made when the app starts and closed with it), so every
provider, the relays and the web tools share one connection pool and its keep-alive
connections. What is per provider rides on each request: its connect and read timeouts
(no total timeout, which would cut long generations) and its cap on connections open
at once. Redirects are never followed: they could carry the key to another host.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import aiohttp
import orjson

from proxy.backends.base import Context, RelayRequest
from proxy.config import Settings
from proxy.errors import (
    UpstreamError,
    UpstreamProtocolError,
    UpstreamStatusError,
    UpstreamTimeout,
    UpstreamUnreachable,
    status_for_upstream,
)
from proxy.providers import Provider

log = logging.getLogger("proxy.upstream")
ERROR_BODY_LIMIT = 64 * 1024
TAIL_WAIT = 1.0  # seconds to read the last bytes so the connection can be reused
FINISH_GRACE = 5.0  # seconds to wait for the end once the model said it finished


def upstream_session(settings: Settings) -> aiohttp.ClientSession:
    """The process's one session for every upstream call. Its pool holds at most
    ``max_connections`` in all and ``max_connections_per_host`` to one host; no cookie
    jar: an upstream's cookie is one client's, never to be sent with another's request
    (Go's ReverseProxy keeps none either), nor paid for per call."""
    connector = aiohttp.TCPConnector(limit=settings.max_connections,
                                     limit_per_host=settings.max_connections_per_host)
    return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar(),
                                 timeout=_timeouts(settings.connect_timeout,
                                                   settings.read_timeout))


def _timeouts(connect: float, read: float) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=None, sock_connect=connect, sock_read=read)


class HttpBackend:
    """The base of the HTTP kinds: the session, the POST, the refusal, the relay. The
    session is the app's (``context.session``); a backend made without one (a test, a
    script) makes its own and closes it."""

    def __init__(self, provider: Provider, context: Context) -> None:
        self.provider = provider
        self.context = context
        self.settings = settings = context.settings
        self.grace = min(FINISH_GRACE, provider.read_timeout or settings.read_timeout)
        self.timeout = _timeouts(provider.connect_timeout or settings.connect_timeout,
                                 provider.read_timeout or settings.read_timeout)
        # The provider's own cap on connections open at once: a request holds a place
        # from its send until its response is released, as it holds a connection.
        self._places = asyncio.Semaphore(min(provider.max_connections,
                                             provider.max_connections_per_host))
        self._session: aiohttp.ClientSession | None = None
        self._owns_session = False

    async def start(self) -> None:
        self._session = self.context.session
        if self._session is None:
            self._session, self._owns_session = upstream_session(self.settings), True

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
        self._session = None

    async def post(self, stack: contextlib.AsyncExitStack, url: str, body: bytes,
                   headers: Mapping[str, str]) -> aiohttp.ClientResponse:
        return await self.request(stack, "POST", url, data=body, headers=headers)

    async def request(self, stack: contextlib.AsyncExitStack, method: str, url: str, *,
                      data: bytes | None, headers: Mapping[str, str],
                      params: Mapping[str, str] | None = None) -> aiohttp.ClientResponse:
        """The answer, held open in ``stack`` with one of the provider's places. A refusal
        gives its place back at once: it is read whole straight away, and a retry on the
        same stack (a mended request, a lost backboard thread) must not wait for a place
        its own refusal holds."""
        assert self._session is not None, "the backend was not started"
        await self._places.acquire()
        try:
            response = await stack.enter_async_context(self._session.request(
                method, url, data=data, headers=headers, params=params,
                allow_redirects=False, timeout=self.timeout))
        except BaseException:
            self._places.release()
            raise
        if response.status >= 300:
            self._places.release()
        else:
            stack.callback(self._places.release)
        return response

    async def refused(self, response: aiohttp.ClientResponse,
                      key: str | None) -> UpstreamStatusError:
        """The upstream's error answer as an UpstreamStatusError, every secret masked."""
        return await status_error(response, lambda text: self.context.masker(text, (key,)))

    async def open_relay(self, stack: contextlib.AsyncExitStack, relay: RelayRequest,
                         body: bytes, key: str | None) -> aiohttp.ClientResponse:
        headers = {**self.relay_headers(relay, key), "accept-encoding": "identity"}
        response = await self.post(stack, self.relay_url(relay), body, headers)
        if 300 <= response.status < 400:
            raise await self.refused(response, key)
        return response

    def relay_url(self, relay: RelayRequest) -> str:
        raise NotImplementedError

    def relay_headers(self, relay: RelayRequest, key: str | None) -> dict[str, str]:
        raise NotImplementedError


class HttpBody:
    """An HTTP response body as the read loop's byte source."""

    __slots__ = ("_response", "read")

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.read = response.content.readany

    async def finished(self) -> None:
        await read_tail(self._response)


@contextlib.contextmanager
def upstream_failures() -> Iterator[None]:
    """Translate aiohttp's exceptions raised inside the block into UpstreamErrors."""
    try:
        yield
    except UpstreamError:
        raise
    except TimeoutError:
        raise UpstreamTimeout("The upstream did not answer in time.") from None
    except aiohttp.ClientConnectorError as exc:
        raise UpstreamUnreachable(f"Cannot reach the upstream: {exc.os_error}") from None
    except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError) as exc:
        raise UpstreamProtocolError(f"The upstream connection broke: {exc}") from None
    except aiohttp.ClientError as exc:
        # str(exc) can quote the URL, credentials and all: the client gets only its kind.
        log.warning("upstream request failed: %s", type(exc).__name__)
        raise UpstreamUnreachable(
            f"The upstream request failed ({type(exc).__name__}).") from None


async def status_error(response: aiohttp.ClientResponse,
                       redact: Callable[[str], str]) -> UpstreamStatusError:
    """An error answer read (within ERROR_BODY_LIMIT) and redacted, ready to report or
    relay: ``raw`` keeps the body as the upstream shaped it, secrets masked."""
    raw = bytearray()
    while len(raw) < ERROR_BODY_LIMIT:  # one read() returns only what has arrived so far
        piece = await response.content.read(ERROR_BODY_LIMIT - len(raw))
        if not piece:
            break
        raw += piece
    status, kind = status_for_upstream(response.status)
    message = redact(error_message(bytes(raw)) or f"The upstream answered HTTP {response.status}.")
    log.warning("upstream answered %s: %s", response.status, message[:300])
    error = UpstreamStatusError(message, status=status, kind=kind)
    error.retry_after = response.headers.get("retry-after")
    text = raw.decode("utf-8", "replace")
    masked = redact(text)
    error.raw = bytes(raw) if masked == text else masked.encode()
    return error


def error_message(raw: bytes) -> str:
    """The message of an OpenAI- or Anthropic-shaped error body, or its text."""
    try:
        body: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode("utf-8", "replace").strip()[:1000]
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            return str(error.get("message") or error.get("detail") or "")
        return str(error)
    return ""


def json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise UpstreamProtocolError("The upstream answered with invalid JSON.") from None
    if not isinstance(body, dict):
        raise UpstreamProtocolError("The upstream answered with JSON that is not an object.")
    return body


async def read_tail(response: aiohttp.ClientResponse) -> None:
    """Read what follows the last event so the connection can be reused; an upstream that
    never closes only costs that connection, never the client's answer."""
    try:
        await asyncio.wait_for(response.content.read(), TAIL_WAIT)
    except (TimeoutError, aiohttp.ClientError):
        response.close()

"""What every HTTP upstream shares: aiohttp failures as ``proxy.errors``, error bodies read
and redacted, and reads that give up politely.

The one place that knows how aiohttp fails, so every backend (and the same-dialect relay)
reports a refused connection, a timeout or a cut stream the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Iterator
from typing import Any

import aiohttp
import orjson

from proxy.errors import (
    UpstreamError,
    UpstreamProtocolError,
    UpstreamStatusError,
    UpstreamTimeout,
    UpstreamUnreachable,
    status_for_upstream,
)

log = logging.getLogger("proxy.upstream")
ERROR_BODY_LIMIT = 64 * 1024
TAIL_WAIT = 1.0  # seconds to read the last bytes so the connection can be reused
FINISH_GRACE = 5.0  # seconds to wait for the end once the model said it finished


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
                       keys: Iterable[str | None]) -> UpstreamStatusError:
    raw = bytearray()
    while len(raw) < ERROR_BODY_LIMIT:  # one read() returns only what has arrived so far
        piece = await response.content.read(ERROR_BODY_LIMIT - len(raw))
        if not piece:
            break
        raw += piece
    status, kind = status_for_upstream(response.status)
    message = redact(error_message(bytes(raw)) or f"The upstream answered HTTP {response.status}.",
                     keys)
    log.warning("upstream answered %s: %s", response.status, message[:300])
    error = UpstreamStatusError(message, status=status, kind=kind)
    error.retry_after = response.headers.get("retry-after")
    error.raw = bytes(raw)
    return error


def redact(text: str, keys: Iterable[str | None]) -> str:
    """Some servers quote the keys they refused; none may reach a log or a client."""
    for key in keys:
        if key and len(key) >= 8:
            text = text.replace(key, "***")
    return text


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


async def next_chunk(content: aiohttp.StreamReader, finishing: bool, grace: float) -> bytes:
    """The next upstream read; b"" at the end. Once the model has finished, an upstream
    that never sends its last frames must not hold the client's answer (peers.md 3)."""
    if not finishing:
        return await content.readany()
    try:
        return await asyncio.wait_for(content.readany(), grace)
    except TimeoutError:
        return b""


async def read_tail(response: aiohttp.ClientResponse) -> None:
    """Read what follows the last event so the connection can be reused; an upstream that
    never closes only costs that connection, never the client's answer."""
    try:
        await asyncio.wait_for(response.content.read(), TAIL_WAIT)
    except (TimeoutError, aiohttp.ClientError):
        response.close()

"""The Redis store: state shared by proxy instances on several machines
(``redis://…`` or ``rediss://…`` for TLS), through the ``redis`` package's asyncio client.

Every key carries the deployment's prefix (``?prefix=`` in the URL, default ``llmproxy:``)
so that several deployments can share one Redis, and every key carries a TTL, set in the
same command that writes it. Socket timeouts of a few seconds and a deadline around each
call turn a down or stalled Redis into ``StoreUnavailable`` quickly; the client's pool
reconnects by itself on a later call, so the proxy recovers when Redis is back.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Awaitable
from typing import TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from redis import exceptions as redis_errors
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from proxy.state.store import StoreUnavailable

T = TypeVar("T")

DEFAULT_PREFIX = "llmproxy:"
# INCRBY, and a TTL for a key that has none (a new one): atomic, as one script.
INCR_SCRIPT = """
local total = redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) == -1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return total
"""
SCAN_BATCH = 500


class RedisStore:
    """The ``Store`` Protocol over Redis, every key under one prefix."""

    def __init__(self, url: str, *, prefix: str | None = None, timeout: float = 2.0) -> None:
        """``url``: ``redis://[user:password@]host[:port][/db][?prefix=…]`` or ``rediss://``;
        ``prefix`` (else the URL's, else ``llmproxy:``) starts every key; ``timeout`` bounds
        connecting and each reply, in seconds. Nothing connects before the first call."""
        client_url, url_prefix = split_prefix(url)
        self.prefix = prefix if prefix is not None else (url_prefix or DEFAULT_PREFIX)
        self.label = redact(client_url)
        self._deadline = 2 * timeout + 1.0  # a reconnect and one retry, with room to spare
        self._client = Redis.from_url(
            client_url, socket_connect_timeout=timeout, socket_timeout=timeout,
            # One quick retry after a broken connection (a pooled one that died with a
            # restarted Redis) goes through a fresh one; none after a timeout, and no more:
            # they would only stretch the wait while Redis is down or stalled.
            retry=Retry(NoBackoff(), 1, supported_errors=(redis_errors.ConnectionError,)),
            retry_on_error=[redis_errors.ConnectionError], health_check_interval=30)
        _check_options(self._client, self.label)
        self._incr = self._client.register_script(INCR_SCRIPT)

    def __repr__(self) -> str:
        return f"RedisStore({self.label!r}, prefix={self.prefix!r})"

    async def get(self, key: str) -> bytes | None:
        value = await self._call(self._client.get(self.prefix + key))
        return None if value is None else _as_bytes(value)

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        await self._call(self._client.set(self.prefix + key, value, px=_ms(ttl)))

    async def set_if_absent(self, key: str, value: bytes, ttl: float) -> bool:
        stored = await self._call(self._client.set(self.prefix + key, value, px=_ms(ttl),
                                                   nx=True))
        return bool(stored)

    async def incr(self, key: str, amount: int, ttl: float) -> int:
        try:
            total = await self._call(self._incr(keys=[self.prefix + key],
                                                args=[amount, _ms(ttl)]))
        except redis_errors.ResponseError as exc:
            raise ValueError(f"not an integer at {key!r}: {exc}") from exc
        return int(total)

    async def delete(self, key: str) -> None:
        await self._call(self._client.delete(self.prefix + key))

    async def scan(self, prefix: str, limit: int = 1000) -> list[tuple[str, bytes]]:
        return await self._call(self._scan(prefix, limit))

    async def ping(self) -> bool:
        try:
            return bool(await self._call(self._client.ping()))
        except StoreUnavailable:
            return False

    async def close(self) -> None:
        await self._client.aclose()

    async def _scan(self, prefix: str, limit: int) -> list[tuple[str, bytes]]:
        """SCAN may return a key twice and MGET may find it gone: both are allowed for."""
        pattern = _glob_escape(self.prefix + prefix) + "*"
        found: dict[str, bytes] = {}
        cursor = 0
        while True:
            cursor, keys = await self._client.scan(cursor, match=pattern, count=SCAN_BATCH)
            if keys:
                values = await self._client.mget(keys)
                for raw_key, value in zip(keys, values, strict=True):
                    if value is not None and len(found) < limit:
                        found[_as_bytes(raw_key).decode()[len(self.prefix):]] = _as_bytes(value)
            if cursor == 0 or len(found) >= limit:
                return sorted(found.items())

    async def _call(self, command: Awaitable[T]) -> T:
        """Await one command within the deadline; a connection that failed, timed out or
        was refused, and any server-side error, become ``StoreUnavailable`` naming the
        store (with the password left out). An answer of the wrong type stays itself."""
        try:
            async with asyncio.timeout(self._deadline):
                return await command
        except redis_errors.ResponseError as exc:
            if "not an integer" in str(exc):
                raise
            raise StoreUnavailable(f"redis store {self.label}: {exc}") from exc
        except (redis_errors.RedisError, OSError) as exc:  # TimeoutError is an OSError
            reason = str(exc) or f"no answer within {self._deadline:g} s"
            raise StoreUnavailable(f"redis store {self.label}: {reason}") from exc


def split_prefix(url: str) -> tuple[str, str | None]:
    """The URL without our ``prefix`` query item (the client refuses items it does not
    know), and that item's value if there was one."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefixes = [value for name, value in query if name == "prefix"]
    rest = urlencode([(name, value) for name, value in query if name != "prefix"])
    return urlunsplit(parts._replace(query=rest)), (prefixes[-1] if prefixes else None)


def redact(url: str) -> str:
    """The URL with any password replaced, fit for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def _check_options(client: Redis, label: str) -> None:
    """Make one connection object (it connects only when used) so that an option the URL
    misspells fails now, at startup, as a ValueError, not later on every call."""
    pool = client.connection_pool
    try:
        pool.connection_class(**pool.connection_kwargs)
    except TypeError as exc:
        raise ValueError(f"STATE_URL {label}: an option the redis client does not take "
                         f"({exc})") from exc


def _as_bytes(value: bytes | str) -> bytes:
    """The client answers bytes (``decode_responses`` is off); its types allow str too."""
    return value if isinstance(value, bytes) else value.encode()


def _ms(ttl: float) -> int:
    return max(1, math.ceil(ttl * 1000))


def _glob_escape(text: str) -> str:
    """``text`` matched literally by SCAN's glob-style MATCH."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)

"""The state store: a small async key-value interface for what must outlive a request
(key health, learned model limits, backboard's thread maps, rate-limit windows).

Every entry has a TTL, so nothing grows without bound. Values are bytes (callers encode
with orjson). ``MemoryStore`` serves one process; the embedded file store (workers on one
machine) and Redis (several machines) implement the same Protocol. No caller may touch a
store once per streamed chunk: a store call belongs to the start or the end of a request.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from proxy.errors import StoreUnavailable

__all__ = ["MemoryStore", "Store", "StoreUnavailable"]


class Store(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds (replacing any old value)."""
        ...

    async def set_if_absent(self, key: str, value: bytes, ttl: float) -> bool:
        """Store only when ``key`` holds nothing live; True when this call stored it."""
        ...

    async def incr(self, key: str, amount: int, ttl: float) -> int:
        """Add ``amount`` to the integer at ``key`` (0 when absent) and return the sum; a
        new key lives ``ttl`` seconds, an existing one keeps its expiry (rate windows)."""
        ...

    async def delete(self, key: str) -> None: ...

    async def scan(self, prefix: str, limit: int = 1000) -> list[tuple[str, bytes]]:
        """Up to ``limit`` live entries whose keys start with ``prefix``."""
        ...

    async def ping(self) -> bool:
        """True when the store answers now (for /health); False, never an exception, when
        it does not."""
        ...

    async def close(self) -> None: ...


class MemoryStore:
    """One process's store: a dict with expiry times, swept as it is used."""

    def __init__(self, *, now: Callable[[], float] = time.monotonic,
                 max_entries: int = 100_000) -> None:
        self._now = now
        self._max = max_entries
        self._data: dict[str, tuple[bytes, float]] = {}

    async def get(self, key: str) -> bytes | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        if entry[1] <= self._now():
            del self._data[key]
            return None
        return entry[0]

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        self._put(key, value, ttl)

    async def set_if_absent(self, key: str, value: bytes, ttl: float) -> bool:
        if await self.get(key) is not None:
            return False
        self._put(key, value, ttl)
        return True

    async def incr(self, key: str, amount: int, ttl: float) -> int:
        current = await self.get(key)
        total = (int(current) if current else 0) + amount
        expires = self._data[key][1] if current is not None else self._now() + ttl
        self._data[key] = (str(total).encode(), expires)
        return total

    async def delete(self, key: str) -> None:
        self._data.pop(key, None)

    async def scan(self, prefix: str, limit: int = 1000) -> list[tuple[str, bytes]]:
        now = self._now()
        found = [(k, v) for k, (v, until) in self._data.items()
                 if k.startswith(prefix) and until > now]
        return found[:limit]

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        self._data.clear()

    def _put(self, key: str, value: bytes, ttl: float) -> None:
        if key not in self._data and len(self._data) >= self._max:
            self._sweep()
        self._data[key] = (value, self._now() + ttl)

    def _sweep(self) -> None:
        """Drop the expired entries; if the store is still full, the oldest writes go."""
        now = self._now()
        self._data = {k: e for k, e in self._data.items() if e[1] > now}
        while len(self._data) >= self._max:
            self._data.pop(next(iter(self._data)))

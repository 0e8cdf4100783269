"""A store that fails fast: once the store it wraps stops answering, calls fail at once
for a short while instead of each waiting out the store's timeout, and the next call
after that tries again, so the proxy recovers by itself when the store comes back.

What needs the store (a backboard conversation's thread map, an inbound key's rate
window) then gets a clear 503 naming the store within a few seconds, never a hang; what
only keeps its bookkeeping there (key health, learned limits) goes on with what this
process knows. ``health()`` is what ``/health`` says about the store.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from proxy.errors import StoreUnavailable
from proxy.state.store import Store

COOLDOWN_SECONDS = 5.0  # after a failure, calls fail at once for this long
T = TypeVar("T")


class GuardedStore:
    def __init__(self, store: Store, label: str, *, cooldown: float = COOLDOWN_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.inner = store
        self.label = label  # the store's name in messages: a URL without its password
        self._cooldown = cooldown
        self._clock = clock
        self._down_until = float("-inf")
        self._last_error = ""

    @property
    def down(self) -> bool:
        return self._clock() < self._down_until

    def health(self) -> dict[str, object]:
        return {"url": self.label, "ok": not self._last_error,
                **({"error": self._last_error} if self._last_error else {})}

    async def get(self, key: str) -> bytes | None:
        return await self._call(self.inner.get, key)

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        await self._call(self.inner.set, key, value, ttl)

    async def set_if_absent(self, key: str, value: bytes, ttl: float) -> bool:
        return await self._call(self.inner.set_if_absent, key, value, ttl)

    async def incr(self, key: str, amount: int, ttl: float) -> int:
        return await self._call(self.inner.incr, key, amount, ttl)

    async def delete(self, key: str) -> None:
        await self._call(self.inner.delete, key)

    async def scan(self, prefix: str, limit: int = 1000) -> list[tuple[str, bytes]]:
        return await self._call(self.inner.scan, prefix, limit)

    async def check(self, within: float) -> dict[str, object]:
        """``health()`` after a ping bounded by ``within`` seconds (none while the store is
        known to be down: the cooldown's next call will try it)."""
        if not self.down:
            try:
                await asyncio.wait_for(self.ping(), within)
            except TimeoutError:
                self._failed(f"no answer to a ping within {within:g} s")
        return self.health()

    async def ping(self) -> bool:
        """Ask the store now (``/health``), whatever the cooldown says."""
        ok = await self.inner.ping()
        if ok:
            self._down_until, self._last_error = float("-inf"), ""
        elif not self._last_error:
            self._last_error = "no answer to a ping"
        return ok

    async def close(self) -> None:
        await self.inner.close()

    async def _call(self, method: Callable[..., Awaitable[T]], *args: object) -> T:
        if self.down:
            raise StoreUnavailable(f"The state store ({self.label}) is unavailable: "
                                   f"{self._last_error}")
        try:
            result = await method(*args)
        except StoreUnavailable as exc:
            self._failed(exc.message)
            raise StoreUnavailable(f"The state store ({self.label}) is unavailable: "
                                   f"{exc.message}") from None
        self._last_error = ""
        return result

    def _failed(self, reason: str) -> None:
        self._down_until = self._clock() + self._cooldown
        self._last_error = reason

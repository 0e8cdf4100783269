"""A provider's keys: handed out round-robin, rested when they keep failing.

A key that fails three times in a row (401, 403, 429, 5xx, a network error) rests for a
cool-down, longer if the upstream's ``retry-after`` asks for it; one success resets its
count. A request never gets a resting key while another is well; when every key rests,
the one back soonest is used rather than refusing outright.

Health lives in the state store (``proxy.state``), so every worker and instance sharing
it rests a failing key together (while the store does not answer, each process goes on
with what it saw itself): under ``keys:<provider>:<key hash>`` (never the key),
``…:fails`` counts failures in a row and ``…:rest`` holds the time it rests until. The
store is asked at most once a second per provider (``REFRESH_SECONDS``) and written only
when a key fails or recovers, so a well key costs no store call at all.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable

from proxy.errors import StoreUnavailable
from proxy.state.store import Store

FAILURES_TO_REST = 3
REST_SECONDS = 30.0
MAX_REST_SECONDS = 300.0
FAILURE_MEMORY_SECONDS = 600.0  # failures further apart than this are not "in a row"
REFRESH_SECONDS = 1.0


class KeyPool:
    def __init__(self, provider: str, keys: tuple[str, ...], store: Store, *,
                 now: Callable[[], float] = time.time,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._keys = keys
        self._store = store
        self._names = {k: f"keys:{provider}:{hashlib.sha256(k.encode()).hexdigest()[:16]}"
                       for k in keys}
        self._next = 0
        self._now, self._clock = now, clock
        self._resting: dict[str, float] = {}  # key -> wall-clock time it rests until
        self._failing: dict[str, int] = {}  # failures in a row this process saw, by key
        self._fresh_until = float("-inf")

    def __len__(self) -> int:
        return len(self._keys)

    async def take(self, exclude: frozenset[str] = frozenset(), *,
                   resting_ok: bool = True, prefer: str | None = None) -> str | None:
        """The next well key (round-robin), skipping ``exclude`` (tried this request);
        ``prefer`` first when it is well; with ``resting_ok``, when none is well, the
        resting one back soonest."""
        if not self._keys:
            return None
        await self._refresh()
        now = self._now()
        if prefer in self._names and prefer not in exclude \
                and self._resting.get(prefer, 0.0) <= now:
            return prefer
        count = len(self._keys)
        for step in range(count):
            key = self._keys[(self._next + step) % count]
            if self._resting.get(key, 0.0) <= now and key not in exclude:
                self._next = (self._next + step + 1) % count
                return key
        untried = [k for k in self._keys if k not in exclude]
        if not untried or not resting_ok:
            return None
        return min(untried, key=lambda k: self._resting.get(k, 0.0))

    def rest_left(self, key: str) -> float:
        return max(0.0, self._resting.get(key, 0.0) - self._now())

    async def failed(self, key: str, retry_after: float | None = None) -> None:
        name = self._names.get(key)
        if name is None:
            return
        self._failing[key] = self._failing.get(key, 0) + 1
        try:
            failures = await self._store.incr(f"{name}:fails", 1, FAILURE_MEMORY_SECONDS)
        except StoreUnavailable:
            failures = self._failing[key]  # this process's own count
        if retry_after is None and failures < FAILURES_TO_REST:
            return
        rest = min(max(retry_after or 0.0,
                       REST_SECONDS if failures >= FAILURES_TO_REST else 0.0), MAX_REST_SECONDS)
        until = self._now() + rest
        if until > self._resting.get(key, 0.0) and rest > 0:
            self._resting[key] = until
            with contextlib.suppress(StoreUnavailable):
                await self._store.set(f"{name}:rest", repr(until).encode(), rest)

    async def succeeded(self, key: str) -> None:
        if key not in self._failing and key not in self._resting:
            return  # a well key: nothing to reset, no store call
        self._failing.pop(key, None)
        self._resting.pop(key, None)
        name = self._names[key]
        with contextlib.suppress(StoreUnavailable):
            await self._store.delete(f"{name}:fails")
            await self._store.delete(f"{name}:rest")

    async def _refresh(self) -> None:
        """What the other workers learned: read at most once every REFRESH_SECONDS."""
        if self._clock() < self._fresh_until:
            return
        self._fresh_until = self._clock() + REFRESH_SECONDS
        for key, name in self._names.items():
            try:
                raw = await self._store.get(f"{name}:rest")
            except StoreUnavailable:
                return  # the store is away: go on with this process's own view
            if raw is None:
                self._resting.pop(key, None)
            else:
                self._resting[key] = float(raw)

"""A provider's keys: handed out round-robin, rested when they keep failing.

A key that fails three times in a row (401, 403, 429, 5xx, a network error) rests for a
cool-down, longer if the upstream's ``retry-after`` asks for it; one success resets its
count. A request never gets a resting key while another is well; when every key rests,
the one back soonest is used rather than refusing outright. Keys live in memory here (per
worker process); nothing about them is ever logged but their position.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

FAILURES_TO_REST = 3
REST_SECONDS = 30.0
MAX_REST_SECONDS = 300.0


@dataclass(slots=True)
class _Key:
    value: str
    failures: int = 0
    resting_until: float = 0.0


class KeyPool:
    def __init__(self, keys: tuple[str, ...], *,
                 now: Callable[[], float] = time.monotonic) -> None:
        self._keys = [_Key(k) for k in keys]
        self._next = 0
        self._now = now

    def __len__(self) -> int:
        return len(self._keys)

    def take(self, exclude: frozenset[str] = frozenset(), *,
             resting_ok: bool = True) -> str | None:
        """The next well key (round-robin), skipping ``exclude`` (tried this request);
        with ``resting_ok``, when none is well, the resting one back soonest."""
        if not self._keys:
            return None
        now = self._now()
        count = len(self._keys)
        for step in range(count):
            key = self._keys[(self._next + step) % count]
            if key.resting_until <= now and key.value not in exclude:
                self._next = (self._next + step + 1) % count
                return key.value
        untried = [k for k in self._keys if k.value not in exclude]
        if not untried or not resting_ok:
            return None
        return min(untried, key=lambda k: k.resting_until).value

    def rest_left(self, value: str) -> float:
        key = self._find(value)
        return max(0.0, key.resting_until - self._now()) if key else 0.0

    def failed(self, value: str, retry_after: float | None = None) -> None:
        key = self._find(value)
        if key is None:
            return
        key.failures += 1
        if retry_after is not None or key.failures >= FAILURES_TO_REST:
            rest = min(max(retry_after or 0.0, REST_SECONDS if key.failures >= FAILURES_TO_REST
                           else 0.0), MAX_REST_SECONDS)
            key.resting_until = max(key.resting_until, self._now() + rest)

    def succeeded(self, value: str) -> None:
        key = self._find(value)
        if key is not None:
            key.failures = 0
            key.resting_until = 0.0

    def _find(self, value: str) -> _Key | None:
        return next((k for k in self._keys if k.value == value), None)

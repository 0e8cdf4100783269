"""backboard's state: one assistant per key, warm threads per key, and the maps that find a
conversation's thread again.

* **Assistants.** One per key, named ``llm-dialect-proxy``: found again after a restart
  (the store, then backboard's own list by name) before one is made.
* **Warm threads.** A pool of pre-made threads per key (THREAD_POOL_SIZE), filled when the
  backend starts and refilled in the background, so a new conversation never waits for
  one. Threads stay with the key that made them.
* **Maps**, in the state store so every worker and instance finds them, each with the
  THREAD_TTL: conversation key → thread (``bb:conv:``), tool call id → thread
  (``bb:tool:``), both under the key's fingerprint (never the key). A lookup is
  one-shot (the entry is removed when used: a retried or branched turn starts afresh,
  with the history replayed), and a thread in use is claimed (``bb:busy:``), so two
  requests never talk to one thread at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import orjson

from proxy.canonical import Part, ToolUsePart
from proxy.dialects.backboard.conversation import Turn
from proxy.errors import StoreUnavailable
from proxy.state.store import Store

log = logging.getLogger("proxy.backboard")
ASSISTANT_TTL = 30 * 24 * 3600.0
WARN_EVERY = 60.0  # seconds between two warnings that warm threads cannot be made
BUSY_TTL = 900.0  # a claim outlives no turn by much, even if its worker died mid-turn

NewThread = Callable[[str], Awaitable[str]]  # key -> a fresh thread id


def fingerprint(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Taken:
    """The thread a turn talks to, and whether it is fresh (then it gets the replay)."""

    thread: str
    fresh: bool


class Threads:
    def __init__(self, store: Store, new_thread: NewThread, *, ttl: float,
                 pool_size: int) -> None:
        self._store = store
        self._new_thread = new_thread
        self._ttl = ttl
        self._pool_size = pool_size
        self._pools: dict[str, deque[str]] = {}  # key fingerprint -> warm thread ids
        self._refills: set[asyncio.Task[None]] = set()
        self._warned: dict[str, float] = {}  # key fingerprint -> when a failure was logged

    # ------------------------------------------------------------------- warm threads

    def fill(self, key: str) -> None:
        """Start filling ``key``'s pool in the background."""
        fp = fingerprint(key)
        missing = self._pool_size - len(self._pools.setdefault(fp, deque()))
        for _ in range(max(missing - len(self._refills), 0)):
            task = asyncio.get_running_loop().create_task(self._refill(key, fp),
                                                          name="backboard-thread")
            self._refills.add(task)
            task.add_done_callback(self._refills.discard)

    async def _refill(self, key: str, fp: str) -> None:
        try:
            thread = await self._new_thread(key)
        except Exception as exc:  # backboard down: the next request makes its own
            if time.monotonic() - self._warned.get(fp, float("-inf")) > WARN_EVERY:
                self._warned[fp] = time.monotonic()
                log.warning("backboard: warm threads for key %s could not be made: %s", fp,
                            getattr(exc, "message", type(exc).__name__))
            return
        self._pools.setdefault(fp, deque()).append(thread)

    async def fresh(self, key: str) -> str:
        """A warm thread if one is ready (and a refill started), else one made now."""
        pool = self._pools.get(fingerprint(key))
        thread = pool.popleft() if pool else None
        self.fill(key)
        return thread if thread is not None else await self._new_thread(key)

    async def close(self) -> None:
        for task in list(self._refills):
            task.cancel()
        await asyncio.gather(*self._refills, return_exceptions=True)

    # --------------------------------------------------------------------------- maps

    async def for_turn(self, key: str, turn: Turn) -> Taken:
        """The thread that holds ``turn``'s history (claimed for this turn), else a fresh
        one."""
        fp = fingerprint(key)
        names = []
        if turn.lookup_key is not None:
            names.append(f"bb:conv:{fp}:{turn.lookup_key}")
        names += [f"bb:tool:{fp}:{tool_id}" for tool_id in turn.result_ids]
        for name in names:
            raw = await self._store.get(name)
            if raw is None:
                continue
            await self._store.delete(name)  # one-shot: a retry or a branch starts afresh
            thread = _thread_of(raw)
            if thread and await self._store.set_if_absent(f"bb:busy:{thread}", b"1", BUSY_TTL):
                return Taken(thread, fresh=False)
        thread = await self.fresh(key)
        await self._store.set(f"bb:busy:{thread}", b"1", BUSY_TTL)
        return Taken(thread, fresh=True)

    async def release(self, thread: str) -> None:
        with contextlib.suppress(StoreUnavailable):  # the claim's TTL ends it anyway
            await self._store.delete(f"bb:busy:{thread}")

    async def remember(self, key: str, turn: Turn, reply: Sequence[Part], thread: str) -> None:
        """After a complete reply: the next turn of this conversation finds ``thread``.
        A store that is away costs the next turn a replay, not this answer."""
        fp = fingerprint(key)
        value = orjson.dumps({"thread": thread, "at": time.time()})
        try:
            await self._store.set(f"bb:conv:{fp}:{turn.store_key(reply)}", value, self._ttl)
            for part in reply:
                if isinstance(part, ToolUsePart):
                    await self._store.set(f"bb:tool:{fp}:{part.id}", value, self._ttl)
        except StoreUnavailable as exc:
            log.warning("backboard: thread %s not remembered (%s); its next turn replays",
                        thread, exc.message)

    async def holds(self, key: str, turn: Turn) -> bool:
        """Whether ``key`` has a thread for ``turn``'s history (no claim, no removal)."""
        if turn.lookup_key is None:
            return False
        return await self._store.get(f"bb:conv:{fingerprint(key)}:{turn.lookup_key}") is not None

    # ------------------------------------------------------------------------- debug

    async def state(self) -> dict[str, object]:
        now = time.time()
        maps: dict[str, object] = {}
        for kind in ("conv", "tool", "busy"):
            entries = await self._store.scan(f"bb:{kind}:")
            ages = [now - _at(raw) for _, raw in entries if _at(raw)]
            maps[kind] = {"count": len(entries),
                          "oldest_seconds": round(max(ages), 1) if ages else None,
                          "newest_seconds": round(min(ages), 1) if ages else None}
        return {"warm_threads": {fp: len(pool) for fp, pool in self._pools.items()},
                "maps": maps}

    async def clear(self) -> int:
        """Forget every conversation (``POST /debug/clear``): each next turn replays."""
        cleared = 0
        for kind in ("conv", "tool"):
            for name, _ in await self._store.scan(f"bb:{kind}:", limit=100_000):
                await self._store.delete(name)
                cleared += 1
        return cleared


class Assistants:
    """One assistant per key: the store, then backboard's list, then a new one."""

    def __init__(self, store: Store, find: Callable[[str], Awaitable[str | None]],
                 make: Callable[[str], Awaitable[str]]) -> None:
        self._store, self._find, self._make = store, find, make
        self._known: dict[str, str] = {}  # key fingerprint -> assistant id
        self._locks: dict[str, asyncio.Lock] = {}

    async def of(self, key: str) -> str:
        fp = fingerprint(key)
        known = self._known.get(fp)
        if known:
            return known
        async with self._locks.setdefault(fp, asyncio.Lock()):
            if fp in self._known:
                return self._known[fp]
            raw = await self._store.get(f"bb:assistant:{fp}")
            found = raw.decode() if raw else await self._find(key)
            if found is None:
                found = await self._make(key)
                log.info("backboard: made assistant %s for key %s", found, fp)
            await self._store.set(f"bb:assistant:{fp}", found.encode(), ASSISTANT_TTL)
            self._known[fp] = found
            return found

    def state(self) -> dict[str, str]:
        return dict(self._known)


def _thread_of(raw: bytes) -> str:
    with contextlib.suppress(orjson.JSONDecodeError, AttributeError):
        thread = orjson.loads(raw).get("thread")
        if isinstance(thread, str):
            return thread
    return ""


def _at(raw: bytes) -> float:
    with contextlib.suppress(orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
        return float(orjson.loads(raw).get("at") or 0.0)
    return 0.0

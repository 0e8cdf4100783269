"""Inbound keys: who is calling, what they may use, and how much of it per minute.

The providers file may list keys besides ``ak`` (``"keys": [{"name", "key", "models",
"rpm", "tpm"}]``). A request's key is compared with every key in constant time (each
compare, and all of them, whatever matches), so neither a key nor which one matched can
be guessed from timings. Limits of requests (``rpm``) and tokens (``tpm``) per minute are
windows in the state store, so they hold across workers and instances: a request over
either is a 429 with ``retry-after`` before any upstream call; its tokens are counted
once its answer is done. The key's *name* goes to the access log and metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import math
import time
from collections.abc import Callable

from proxy.errors import Forbidden, RateLimited, StoreUnavailable
from proxy.providers import InboundKey
from proxy.state.store import Store

WINDOW_SECONDS = 60
ADMIN = "ak"  # the name of the proxy's own key (PROXY_API_KEY, the file's ak)


class Inbound:
    def __init__(self, keys: tuple[InboundKey, ...], store: Store, *,
                 now: Callable[[], float] = time.time) -> None:
        self.keys = keys
        self._encoded = [(key, key.key.encode()) for key in keys]
        self._store = store
        self._now = now

    def __bool__(self) -> bool:
        return bool(self.keys)

    @classmethod
    def configured(cls, admin: str, keys: tuple[InboundKey, ...], store: Store) -> Inbound:
        """The proxy's own key (named ``ak``) and the providers file's keys."""
        own = (InboundKey(ADMIN, admin),) if admin else ()
        return cls((*own, *keys), store)

    def may_debug(self, key: InboundKey) -> bool:
        """``/debug/`` shows and clears everyone's state: the proxy's own key only, when
        there is one."""
        return key.name == ADMIN or not any(k.name == ADMIN for k in self.keys)

    def identify(self, given: bytes) -> InboundKey | None:
        """The key ``given`` is, compared with every key in constant time."""
        found = None
        for key, encoded in self._encoded:
            if hmac.compare_digest(given, encoded):
                found = key
        return found

    def check_model(self, key: InboundKey, *names: str) -> None:
        """A 403 unless ``key`` may use one of ``names`` (the model asked, its id)."""
        if key.models and not any(name in key.models for name in names if name):
            raise Forbidden(f"The key {key.name!r} may not use the model {names[0]!r}; it "
                            f"may use {', '.join(key.models)}.")

    async def admit(self, key: InboundKey) -> None:
        """Count this request in ``key``'s minute; a 429 when it is over a limit."""
        if key.rpm is None and key.tpm is None:
            return  # no limits: no store call
        now = self._now()
        window = int(now // WINDOW_SECONDS)
        retry = str(max(1, math.ceil(WINDOW_SECONDS - now % WINDOW_SECONDS)))
        if key.tpm is not None:
            used = await self._store.get(f"rate:{key.name}:tok:{window}")
            if used is not None and int(used) >= key.tpm:
                raise _limited(f"The key {key.name!r} used its {key.tpm} tokens for this "
                               "minute (tpm).", retry)
        if key.rpm is not None:
            count = await self._store.incr(f"rate:{key.name}:req:{window}", 1,
                                           2 * WINDOW_SECONDS)
            if count > key.rpm:
                raise _limited(f"The key {key.name!r} made its {key.rpm} requests for this "
                               "minute (rpm).", retry)

    async def charge(self, key: InboundKey, tokens: int) -> None:
        """Count an answer's tokens in ``key``'s minute (nothing lost if the store is away
        but this minute's count)."""
        if key.tpm is None or tokens <= 0:
            return
        window = int(self._now() // WINDOW_SECONDS)
        with contextlib.suppress(StoreUnavailable, asyncio.CancelledError):
            await self._store.incr(f"rate:{key.name}:tok:{window}", tokens, 2 * WINDOW_SECONDS)


def _limited(message: str, retry_after: str) -> RateLimited:
    error = RateLimited(message)
    error.retry_after = retry_after
    return error


"""Synchronous calls for ``ProxyClient``: a private event loop on a thread of its own.

claudebridge's ``BridgeClient`` is used from plain code too (``with BridgeClient() as c:
c.health_check()``). Its synchronous calls run here, on a loop that belongs to this
runner, so they work both from plain code and from inside someone else's event loop (which
they block, as any synchronous call does).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class BlockingRunner:
    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever,
                                        name="proxy-client-sync", daemon=True)
        self._thread.start()

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        """Run ``work`` on the runner's loop and wait for its result (or exception)."""
        return asyncio.run_coroutine_threadsafe(work, self._loop).result()

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

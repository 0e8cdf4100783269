"""Keeping heavy work off the event loop: a large body's parse, translation or render runs
in a worker thread, so one big request cannot hold every other request (and /health)
for more than a few milliseconds. Small ones run inline: a thread hop costs more than
their work."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

OFF_LOOP_BYTES = 256 * 1024  # about a millisecond of parsing or rendering
T = TypeVar("T")


async def off_loop(size: int, work: Callable[..., T], *args: Any) -> T:
    """``work(*args)``, in a worker thread when ``size`` (bytes of input) says it is heavy."""
    if size < OFF_LOOP_BYTES:
        return work(*args)
    return await asyncio.get_running_loop().run_in_executor(None, work, *args)

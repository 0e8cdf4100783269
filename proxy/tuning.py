"""Process-wide tuning for serving: the cyclic garbage collector and glibc's allocator.

Both defaults suit short scripts, not a server holding a thousand Claude Code requests
(73 KB each, several times that once parsed) at once. Each setting here was measured on
``scripts/bench.py`` and is kept because it paid (README, "Performance").
"""

from __future__ import annotations

import gc
import logging
import os
import sys

log = logging.getLogger("proxy")
GC_THRESHOLD = 50_000  # allocations between two young-generation collections
MMAP_THRESHOLD = 128 * 1024  # bytes: allocations this large get pages of their own
_M_MMAP_THRESHOLD = -3  # mallopt's parameter number, from glibc's malloc.h


def tune_process() -> None:
    tune_gc()
    tune_malloc()


def tune_gc() -> None:
    """Fewer cyclic-GC passes. A Claude Code request parses into some ten thousand
    objects, and with many requests in flight the default threshold (700 allocations)
    runs a collection every few hundred microseconds over all of them, though almost
    nothing here makes reference cycles (refcounting frees it). What exists at start-up
    (modules, the app) is frozen out of every pass. Measured on the 73 KB request with 64
    parsed in flight: parse 537 -> 444 us."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 20, 20)


def tune_malloc() -> bool:
    """Blocks of 128 KB and more (socket reads, large bodies) get mmap'd pages of their
    own, returned to the system when freed. glibc's threshold starts at 128 KB but rises
    to the largest such block ever freed, so after the first large read every body and
    its rendered copy lands in the main heap, where a burst leaves it fragmented: the
    next burst cannot reuse it and RSS climbs. Measured on 1000 Claude Code streams
    opened at once, two bursts, interleaved runs: peak RSS 352-377 -> 257-276 MB, with
    c=64 throughput unchanged. A 64 KB threshold saves some 30 MB more but costs about
    10% of c=64 throughput (a mapping and its page faults per body). Only on glibc; an
    explicit setting in the environment wins. Returns whether it was set."""
    if not sys.platform.startswith("linux") or _set_by_the_environment():
        return False
    try:
        import ctypes  # not in every Python build

        mallopt = ctypes.CDLL(None).mallopt
    except (ImportError, OSError, AttributeError):  # or musl and others: their own allocator
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    if mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) != 1:
        log.debug("mallopt(M_MMAP_THRESHOLD) was refused")
        return False
    return True


def _set_by_the_environment() -> bool:
    """Whether the operator chose glibc's mmap threshold: MALLOC_MMAP_THRESHOLD_, or
    glibc.malloc.mmap_threshold in GLIBC_TUNABLES."""
    return ("MALLOC_MMAP_THRESHOLD_" in os.environ
            or "glibc.malloc.mmap_threshold" in os.environ.get("GLIBC_TUNABLES", ""))

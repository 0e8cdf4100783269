"""The SQLite store beyond the shared suite: a restart keeps the data, expiry is wall-clock
time honoured on read, the sweep is bounded, and a file locked by another process gives
StoreUnavailable within the timeout (and works again once the lock is gone)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from proxy.state.sqlite_store import SqliteStore
from proxy.state.store import StoreUnavailable

REPO = Path(__file__).resolve().parents[2]


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def rows(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT count(*) FROM entries").fetchone()[0])


async def test_a_restart_keeps_the_data(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    first = SqliteStore(path)
    await first.set("backboard:thread:c1", b"thread-1", 3600)
    await first.incr("rate:alice", 7, 3600)
    await first.close()
    second = SqliteStore(path)
    assert await second.get("backboard:thread:c1") == b"thread-1"
    assert await second.incr("rate:alice", 1, 3600) == 8
    await second.close()


async def test_expiry_is_wall_clock_time_kept_across_a_restart(tmp_path: Path) -> None:
    path, clock = tmp_path / "state.sqlite3", Clock()
    store = SqliteStore(path, now=clock)
    await store.set("k", b"v", 10)
    await store.close()
    clock.now += 9.5
    store = SqliteStore(path, now=clock)
    assert await store.get("k") == b"v"
    clock.now += 0.5
    assert await store.get("k") is None
    assert await store.scan("") == []
    await store.close()


async def test_incr_keeps_the_first_expiry(tmp_path: Path) -> None:
    clock = Clock()
    store = SqliteStore(tmp_path / "s.db", now=clock)
    assert await store.incr("w", 1, 60) == 1
    clock.now += 59
    assert await store.incr("w", 1, 60) == 2
    clock.now += 1
    assert await store.get("w") is None
    assert await store.incr("w", 1, 60) == 1
    await store.close()


async def test_a_sweep_deletes_one_bounded_batch(tmp_path: Path) -> None:
    path, clock = tmp_path / "s.db", Clock()
    store = SqliteStore(path, now=clock, sweep_batch=100, sweep_interval=60)
    for i in range(250):
        await store.set(f"old:{i}", b"x", 1)
    await store.set("live", b"y", 3600)
    clock.now += 2
    assert [await store.sweep() for _ in range(4)] == [100, 100, 50, 0]
    assert rows(path) == 1
    await store.close()


async def test_writes_sweep_now_and_then(tmp_path: Path) -> None:
    path, clock = tmp_path / "s.db", Clock()
    store = SqliteStore(path, now=clock, sweep_batch=100, sweep_interval=60)
    for i in range(250):
        await store.set(f"old:{i}", b"x", 1)
    assert rows(path) == 250
    clock.now += 30  # expired, but the next sweep is not due
    await store.set("a", b"1", 3600)
    assert rows(path) == 251
    clock.now += 31  # due: each write sweeps a batch while full batches come back
    await store.set("b", b"2", 3600)
    assert rows(path) == 152
    await store.set("c", b"3", 3600)
    await store.set("d", b"4", 3600)
    assert rows(path) == 4
    await store.get("a")  # reads never sweep
    await store.close()


async def test_two_stores_on_one_file_share_it(tmp_path: Path) -> None:
    one, two = SqliteStore(tmp_path / "s.db"), SqliteStore(tmp_path / "s.db")
    await one.set("k", b"v", 60)
    assert await two.get("k") == b"v"
    assert await two.set_if_absent("k", b"w", 60) is False
    await two.delete("k")
    assert await one.get("k") is None
    await one.close()
    await two.close()


async def test_the_file_and_its_folder_are_private(tmp_path: Path) -> None:
    path = tmp_path / "new" / "deeper" / "state.sqlite3"
    store = SqliteStore(path)
    await store.set("k", b"v", 60)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert (path.parent / "state.sqlite3-wal").exists()  # WAL mode
    await store.close()


async def test_a_folder_it_cannot_create_is_store_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"")
    store = SqliteStore(blocker / "state.sqlite3")
    with pytest.raises(StoreUnavailable, match="sqlite store"):
        await store.get("k")
    assert await store.ping() is False
    await store.close()


@pytest.fixture
async def locker(tmp_path: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    """Another process holding the write lock of tmp_path/s.db until its stdin closes."""
    setup = SqliteStore(tmp_path / "s.db")
    await setup.set("before", b"1", 60)
    await setup.close()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.state.worker", "lock", str(tmp_path / "s.db"),
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    assert process.stdout is not None
    assert await asyncio.wait_for(process.stdout.readline(), 30) == b"locked\n"
    yield process
    if process.returncode is None:
        process.kill()
        await process.wait()


async def test_a_file_locked_by_another_process_is_store_unavailable_in_time(
        tmp_path: Path, locker: asyncio.subprocess.Process) -> None:
    store = SqliteStore(tmp_path / "s.db", timeout=0.5)
    # The store's own deadline is 1.5 s; 10 s here only catches a hang.
    for write in (store.set("k", b"v", 60), store.incr("n", 1, 60),
                  store.set_if_absent("k", b"v", 60), store.delete("before")):
        with pytest.raises(StoreUnavailable, match=r"sqlite store .*s\.db: database is locked"):
            await asyncio.wait_for(write, 10)
    assert await asyncio.wait_for(store.ping(), 10) is False
    assert await store.get("before") == b"1"  # WAL: readers go on past a writer's lock
    assert locker.stdin is not None
    locker.stdin.close()
    assert await asyncio.wait_for(locker.wait(), 30) == 0
    await store.set("k", b"v", 60)  # the same store, not reopened
    assert await store.get("k") == b"v"
    assert await store.ping() is True
    await store.close()


async def test_calls_queued_behind_a_lock_all_end_in_time(
        tmp_path: Path, locker: asyncio.subprocess.Process) -> None:
    # One thread serves the store: ten writes wait in line, yet none waits past the
    # deadline of its own call.
    store = SqliteStore(tmp_path / "s.db", timeout=0.5)
    results = await asyncio.wait_for(asyncio.gather(
        *(store.set(f"k{i}", b"v", 60) for i in range(10)), return_exceptions=True), 10)
    assert all(isinstance(result, StoreUnavailable) for result in results)
    await store.close()

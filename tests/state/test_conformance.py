"""One suite, three stores: memory, SQLite (a file in tmp_path) and a real Redis.

Every store must behave the same through the ``Store`` Protocol: bytes in, the same bytes
out; entries gone after their TTL; exactly one winner of a ``set_if_absent`` race; ``incr``
that adds up under concurrency (across OS processes for the shared stores); scan by prefix.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from proxy.state.store import Store
from tests.state.conftest import Stores, eventually

REPO = Path(__file__).resolve().parents[2]
EVERY_BYTE = bytes(range(256))


async def opened(stores: Stores, count: int) -> list[Store]:
    """``count`` stores on the same data, each connected already, so that a race starts
    with all of them at once (not with the first while the others still connect)."""
    handles = [stores.open() for _ in range(count)]
    assert all(await asyncio.gather(*(handle.ping() for handle in handles)))
    return handles


async def test_a_value_comes_back_as_the_same_bytes(store: Store) -> None:
    for key, value in [("k:bin", EVERY_BYTE), ("k:empty", b""), ("ключ:✓", "ü✓".encode()),
                       ("k:big", os.urandom(200_000))]:
        await store.set(key, value, 60)
        got = await store.get(key)
        assert type(got) is bytes
        assert got == value


async def test_a_missing_key_reads_none(store: Store) -> None:
    assert await store.get("never:set") is None


async def test_set_replaces_the_value(store: Store) -> None:
    await store.set("k", b"one", 60)
    await store.set("k", b"two", 60)
    assert await store.get("k") == b"two"


async def test_an_entry_expires_after_its_ttl(store: Store) -> None:
    await store.set("short:1", b"x", 0.05)
    await store.set("long:1", b"y", 600)

    async def gone() -> bool:
        return await store.get("short:1") is None
    await eventually(gone)
    assert await store.scan("short:") == []
    assert await store.set_if_absent("short:1", b"again", 60) is True
    assert await store.get("short:1") == b"again"
    assert await store.get("long:1") == b"y"


async def test_set_if_absent_stores_only_over_nothing(store: Store) -> None:
    assert await store.set_if_absent("once", b"first", 60) is True
    assert await store.set_if_absent("once", b"second", 60) is False
    assert await store.get("once") == b"first"
    await store.delete("once")
    assert await store.set_if_absent("once", b"third", 60) is True
    assert await store.get("once") == b"third"


async def test_a_set_if_absent_race_has_exactly_one_winner(stores: Stores) -> None:
    # Several stores over the same data (connections), many tasks each.
    handles = await opened(stores, 3)
    attempts = [handles[i % 3].set_if_absent("race", f"task-{i}".encode(), 60)
                for i in range(60)]
    results = await asyncio.gather(*attempts)
    assert results.count(True) == 1
    winner = results.index(True)
    assert await handles[1].get("race") == f"task-{winner}".encode()


async def test_incr_counts_from_zero(store: Store) -> None:
    assert await store.incr("n", 1, 60) == 1
    assert await store.incr("n", 5, 60) == 6
    assert await store.incr("n", -2, 60) == 4
    assert await store.get("n") == b"4"


async def test_incr_of_a_value_that_is_no_integer_is_a_value_error(store: Store) -> None:
    await store.set("word", b"abc", 60)
    with pytest.raises(ValueError):
        await store.incr("word", 1, 60)
    assert await store.get("word") == b"abc"


async def test_incr_keeps_the_expiry_of_a_live_key(store: Store) -> None:
    # A rate window: later hits must not push its end out. (A second incr seconds after
    # the first on a loaded machine would see 2, not 3, and fail loudly, not flakily pass.)
    assert await store.incr("window", 1, 1.0) == 1
    assert await store.incr("window", 2, 3600) == 3

    async def gone() -> bool:
        return await store.get("window") is None
    await eventually(gone)
    assert await store.incr("window", 1, 60) == 1


async def test_concurrent_incr_adds_up(stores: Stores) -> None:
    handles = await opened(stores, 3)
    totals = await asyncio.gather(*(handles[i % 3].incr("hits", 1, 60) for i in range(90)))
    assert sorted(totals) == list(range(1, 91))


async def test_delete(store: Store) -> None:
    await store.set("k", b"v", 60)
    await store.delete("k")
    assert await store.get("k") is None
    await store.delete("k")  # deleting nothing is fine
    await store.delete("never:set")


async def test_scan_finds_the_live_keys_under_a_prefix(store: Store) -> None:
    entries = {"user:1": b"a", "user:2": b"b", "user:10": b"c", "users": b"d", "use": b"e",
               "other:user:1": b"f", "user;": b"g"}
    for key, value in entries.items():
        await store.set(key, value, 60)
    await store.set("user:gone", b"x", 0.01)

    async def expired() -> bool:
        return await store.get("user:gone") is None
    await eventually(expired)
    assert sorted(await store.scan("user:")) == [("user:1", b"a"), ("user:10", b"c"),
                                                 ("user:2", b"b")]
    assert len(await store.scan("user:", limit=2)) == 2
    assert sorted(await store.scan("")) == sorted(entries.items())
    assert await store.scan("nothing:") == []


async def test_scan_takes_its_prefix_literally(store: Store) -> None:
    # Glob characters mean nothing here (Redis's MATCH would read them as a pattern).
    await store.set("a*[x]?:1", b"1", 60)
    await store.set("ab[x]?:1", b"2", 60)
    await store.set("a*[y]?:1", b"3", 60)
    await store.set("ключ:✓", b"4", 60)
    assert await store.scan("a*[x]?") == [("a*[x]?:1", b"1")]
    assert await store.scan("ключ") == [("ключ:✓", b"4")]


async def test_ping_says_the_store_answers(store: Store) -> None:
    assert await store.ping() is True


async def race_in_two_processes(stores: Stores, command: str, times: int) -> list[list[int]]:
    """Run ``python -m tests.state.worker COMMAND`` twice on the same data, started
    together once both are connected; returns what each printed."""
    workers = [await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.state.worker", command, stores.url, "shared", str(times),
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE) for _ in range(2)]
    try:
        for worker in workers:
            assert worker.stdout is not None
            assert await asyncio.wait_for(worker.stdout.readline(), 30) == b"ready\n"
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write(b"go\n")
            await worker.stdin.drain()
        outputs = await asyncio.wait_for(
            asyncio.gather(*(worker.communicate() for worker in workers)), 60)
    finally:
        for worker in workers:
            if worker.returncode is None:
                worker.kill()
                await worker.wait()
    assert [worker.returncode for worker in workers] == [0, 0]
    return [json.loads(stdout) for stdout, _ in outputs]


# Memory is one process's store. 1000 rounds each, so that the two surely overlap; the
# incr test checks that they did, or it would prove nothing. (With the transactions taken
# out of the SQLite store, these tests fail.)
@pytest.mark.parametrize("stores", ["sqlite", "redis"], indirect=True)
async def test_incr_is_atomic_across_two_processes(stores: Stores) -> None:
    first, second = await race_in_two_processes(stores, "incr", 1000)
    # No total handed out twice, none skipped.
    assert sorted(first + second) == list(range(1, 2001))
    assert await stores.open().get("shared") == b"2000"
    assert not (max(first) < min(second) or max(second) < min(first)), "they never overlapped"


@pytest.mark.parametrize("stores", ["sqlite", "redis"], indirect=True)
async def test_set_if_absent_races_across_two_processes_have_one_winner_each(
        stores: Stores) -> None:
    first, second = await race_in_two_processes(stores, "claim", 1000)
    # Each key won once, by one of them. (Which one won how many says nothing: against
    # Redis the one that started first may stay a step ahead and win them all.)
    assert sorted(first + second) == list(range(1000))

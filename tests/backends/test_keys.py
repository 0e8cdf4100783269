"""Key rotation: round-robin, rest after three failures or for retry-after, reset on success;
health kept in the state store, so pools sharing a store (workers) rest a key together."""

from __future__ import annotations

from proxy.backends.keys import MAX_REST_SECONDS, REFRESH_SECONDS, REST_SECONDS, KeyPool
from proxy.state.store import MemoryStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def pool_of(keys: tuple[str, ...], clock: Clock | None = None,
            store: MemoryStore | None = None) -> KeyPool:
    clock = clock or Clock()
    store = store or MemoryStore(now=clock)
    return KeyPool("p", keys, store, now=clock, clock=clock)


async def takes(pool: KeyPool, n: int) -> list[str | None]:
    return [await pool.take() for _ in range(n)]


async def test_round_robin() -> None:
    assert await takes(pool_of(("a", "b", "c")), 4) == ["a", "b", "c", "a"]


async def test_three_failures_in_a_row_rest_the_key_and_a_success_resets() -> None:
    clock = Clock()
    pool = pool_of(("a", "b"), clock)
    await pool.failed("a")
    await pool.failed("a")
    await pool.succeeded("a")  # the count starts again
    await pool.failed("a")
    await pool.failed("a")
    assert "a" in set(await takes(pool, 4))
    await pool.failed("a")  # third in a row
    assert set(await takes(pool, 6)) == {"b"}  # never a resting key while b is well
    clock.now += REST_SECONDS + 1
    assert "a" in set(await takes(pool, 4))


async def test_retry_after_is_honoured_up_to_a_cap() -> None:
    pool = pool_of(("a", "b"))
    await pool.failed("a", retry_after=7)
    assert pool.rest_left("a") == 7
    await pool.failed("b", retry_after=10_000)
    assert pool.rest_left("b") == MAX_REST_SECONDS


async def test_when_every_key_rests_the_one_back_soonest_is_used() -> None:
    pool = pool_of(("a", "b"))
    await pool.failed("a", retry_after=50)
    await pool.failed("b", retry_after=5)
    assert await pool.take() == "b"


async def test_keys_tried_for_this_request_are_skipped() -> None:
    pool = pool_of(("a", "b"))
    assert await pool.take(frozenset({"a"})) == "b"
    assert await pool.take(frozenset({"a", "b"})) is None
    assert await pool_of(()).take() is None


async def test_pools_sharing_a_store_rest_a_key_together() -> None:
    clock = Clock()
    store = MemoryStore(now=clock)
    one, other = pool_of(("a", "b"), clock, store), pool_of(("a", "b"), clock, store)
    assert await other.take() == "a"  # other has looked at the store once
    for _ in range(3):
        await one.failed("a")  # failures in a row, counted in the store
    assert set(await takes(other, 4)) == {"a", "b"}  # other's view is a second old at most
    clock.now += REFRESH_SECONDS
    assert set(await takes(other, 4)) == {"b"}
    await one.succeeded("a")
    clock.now += REFRESH_SECONDS
    assert "a" in set(await takes(other, 4))


async def test_the_store_never_holds_a_key_itself() -> None:
    clock = Clock()
    store = MemoryStore(now=clock)
    pool = pool_of(("sk-secret-key-0001",), clock, store)
    await pool.failed("sk-secret-key-0001", retry_after=5)
    entries = await store.scan("")
    assert entries and all("sk-secret" not in k and b"sk-secret" not in v for k, v in entries)


async def test_a_well_key_costs_no_store_write() -> None:
    clock = Clock()
    store = MemoryStore(now=clock)
    pool = pool_of(("a",), clock, store)
    await pool.take()
    await pool.succeeded("a")
    assert await store.scan("") == []

"""Key rotation: round-robin, rest after three failures or for retry-after, reset on success."""

from __future__ import annotations

from proxy.backends.keys import MAX_REST_SECONDS, REST_SECONDS, KeyPool


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_round_robin() -> None:
    pool = KeyPool(("a", "b", "c"))
    assert [pool.take() for _ in range(4)] == ["a", "b", "c", "a"]


def test_three_failures_in_a_row_rest_the_key_and_a_success_resets() -> None:
    clock = Clock()
    pool = KeyPool(("a", "b"), now=clock)
    pool.failed("a")
    pool.failed("a")
    pool.succeeded("a")  # the count starts again
    pool.failed("a")
    pool.failed("a")
    assert "a" in {pool.take() for _ in range(4)}
    pool.failed("a")  # third in a row
    assert {pool.take() for _ in range(6)} == {"b"}  # never a resting key while b is well
    clock.now += REST_SECONDS + 1
    assert "a" in {pool.take() for _ in range(4)}


def test_retry_after_is_honoured_up_to_a_cap() -> None:
    clock = Clock()
    pool = KeyPool(("a", "b"), now=clock)
    pool.failed("a", retry_after=7)
    assert pool.rest_left("a") == 7
    pool.failed("b", retry_after=10_000)
    assert pool.rest_left("b") == MAX_REST_SECONDS


def test_when_every_key_rests_the_one_back_soonest_is_used() -> None:
    clock = Clock()
    pool = KeyPool(("a", "b"), now=clock)
    pool.failed("a", retry_after=50)
    pool.failed("b", retry_after=5)
    assert pool.take() == "b"


def test_keys_tried_for_this_request_are_skipped() -> None:
    pool = KeyPool(("a", "b"))
    assert pool.take(frozenset({"a"})) == "b"
    assert pool.take(frozenset({"a", "b"})) is None
    assert KeyPool(()).take() is None

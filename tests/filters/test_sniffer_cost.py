"""The per-chunk cost helper runs (its numbers are for the benchmark report, not asserted)."""

from __future__ import annotations

from tests.filters.sniffer_cost import batches, measure


def test_measure_reports_every_case() -> None:
    result = measure(chunks=40, chunk_chars=4, repeat=1)
    assert set(result) == {"prose", "braces", "lead_then_call"}
    assert all(isinstance(v, float) and v >= 0 for v in result.values())


def test_batches_cut_the_text_into_chunks() -> None:
    work = batches("abc", chunks=5, chunk_chars=2, tail="XY")
    assert len(work) == 2 + 6  # start, 12 characters in 2s, end

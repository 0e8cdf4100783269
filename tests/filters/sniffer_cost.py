"""What the tool-call sniffer costs per streamed chunk: the same event batches fed through
``ToolSniffer`` and through a do-nothing filter, and the difference per chunk.

For the benchmark's report (``scripts/bench.py`` can import ``measure``), and by hand:

    python -m tests.filters.sniffer_cost [--chunks 5000] [--chunk-chars 8]

Three texts: prose with no brace (the common case), prose with braces and inline code
(the sniffer holds and releases a little), and lead text then a call. Not a test: no
timing is asserted anywhere; ``tests/filters/test_sniffer_cost.py`` only runs it small.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from proxy.canonical import (
    BlockStart,
    BlockStop,
    Event,
    MessageDelta,
    MessageStart,
    MessageStop,
    TextDelta,
    Usage,
)
from proxy.filters.tool_sniffer import ToolSniffer

NAMES = ("Agent", "Bash", "Edit", "Glob", "Grep", "Read", "Write", "TodoWrite", "WebFetch")
TEXTS = {
    "prose": "The quick brown fox jumps over the lazy dog, again and again. ",
    "braces": "A dict {'a': 1} and `code` and a set {1, 2}; nothing to call here. ",
}
CALL = '{"tool": "Read", "args": {"file_path": "/home/dev/project/README.md"}}'


def batches(text: str, chunks: int, chunk_chars: int, tail: str = "") -> list[list[Event]]:
    """One batch per upstream chunk, as a backboard stream of ``chunk_chars`` deltas."""
    body = (text * (chunks * chunk_chars // len(text) + 1))[: chunks * chunk_chars] + tail
    pieces = [body[i:i + chunk_chars] for i in range(0, len(body), chunk_chars)]
    out: list[list[Event]] = [[MessageStart("msg", "m", Usage()), BlockStart(0, "text")]]
    out += [[TextDelta(0, piece)] for piece in pieces]
    out.append([BlockStop(0), MessageDelta("end_turn", Usage()), MessageStop()])
    return out


def _seconds(feed: Callable[[list[Event]], list[Event]], work: list[list[Event]]) -> float:
    start = time.perf_counter()
    for batch in work:
        feed(batch)
    return time.perf_counter() - start


def measure(chunks: int = 5000, chunk_chars: int = 8, repeat: int = 3) -> dict[str, float]:
    """Microseconds the sniffer adds per chunk, per text (best of ``repeat``)."""
    cases = {name: batches(text, chunks, chunk_chars) for name, text in TEXTS.items()}
    cases["lead_then_call"] = batches(TEXTS["prose"], chunks, chunk_chars, tail=CALL)
    result = {}
    for name, work in cases.items():
        base = min(_seconds(lambda b: b, work) for _ in range(repeat))
        sniffed = min(_seconds(ToolSniffer(NAMES).feed, work) for _ in range(repeat))
        result[name] = max(sniffed - base, 0.0) / len(work) * 1e6
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=5000)
    parser.add_argument("--chunk-chars", type=int, default=8)
    args = parser.parse_args()
    for name, micros in measure(args.chunks, args.chunk_chars).items():
        print(f"{name:16} {micros:6.2f} µs per chunk")


if __name__ == "__main__":
    main()

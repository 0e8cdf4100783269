"""A second OS process for the store tests, run as ``python -m tests.state.worker``:

* ``incr URL KEY N``: open the store ``URL`` names, print ``ready``, wait for a line on
  stdin (so that two workers start together), add 1 to ``KEY`` N times, and print the
  totals it got back as one JSON list;
* ``claim URL KEY N``: the same start, then ``set_if_absent`` on ``KEY:0`` … ``KEY:N-1``,
  and print the numbers of those it won, as one JSON list;
* ``lock PATH``: take SQLite's write lock on ``PATH``, print ``locked``, and hold it until
  stdin closes.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys

from proxy.state import open_store


async def race(command: str, url: str, key: str, times: int) -> None:
    store = open_store(url, workers=2, state_directory=None)
    try:
        await store.ping()  # connect before the start signal
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        if command == "incr":
            results = [await store.incr(key, 1, 60) for _ in range(times)]
        else:
            results = [i for i in range(times)
                       if await store.set_if_absent(f"{key}:{i}", b"won", 60)]
    finally:
        await store.close()
    print(json.dumps(results), flush=True)


def lock(path: str) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN EXCLUSIVE")
    print("locked", flush=True)
    sys.stdin.read()
    db.execute("ROLLBACK")
    db.close()


def main(argv: list[str]) -> None:
    if argv[0] in ("incr", "claim"):
        asyncio.run(race(argv[0], argv[1], argv[2], int(argv[3])))
    elif argv[0] == "lock":
        lock(argv[1])
    else:
        raise SystemExit(f"unknown command {argv[0]!r}")


if __name__ == "__main__":
    main(sys.argv[1:])

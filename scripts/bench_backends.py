#!/usr/bin/env python3
"""Benchmark the backends that are not plain HTTP relays: backboard (the tool-call sniffer)
and the Claude Code CLI (the warm pool), each against its fake, all on 127.0.0.1.

- ``--scenario backboard`` (bench_backboard.py): the same reply, a few hundred chunks with
  no tool call in them, through a request with tools (the sniffer on) and one without
  (off), alternating: time to first text and total time, with the block-to-block spread
  they are read against, and the proxy's CPU; then the sniffer's cost per chunk
  in-process. Issue 10's wording: with no tool call in the text, both times match the
  same stream without the sniffer within run-to-run noise.
- ``--scenario cli`` (bench_cli_pool.py): the fake CLI (tests/fakes/fake-claude) behind
  ``--upstream-dialect claude-code --pool-size N``: time to first token warm, back to
  back and cold, throughput with the pool busy and the queue in use, and where 503 with
  ``retry-after`` starts. ``--real`` runs the warm and cold ones with the real CLI
  against the fake Anthropic API instead (offline).

Every process started here is stopped before it ends, and it stops by itself: each
measurement is bounded (``--max-seconds`` for the backboard blocks, fixed counts for the
CLI). /proc/loadavg is printed with every table; the machine may be shared.

    .venv/bin/python scripts/bench_backends.py --scenario backboard
    .venv/bin/python scripts/bench_backends.py --scenario cli --pool-size 3 --startup 0.5
    .venv/bin/python scripts/bench_backends.py --scenario cli --real --pool-size 1
    .venv/bin/python scripts/bench_backends.py --scenario backboard --quick --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
for folder in (HERE, REPO):  # the bench modules, and the proxy and the fakes
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

import bench_backboard  # noqa: E402
import bench_cli_pool  # noqa: E402
from bench_procs import Child, load_text, raise_open_files, stop_tree  # noqa: E402


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", choices=("backboard", "cli"))
    ap.add_argument("--quick", action="store_true", help="a few requests each (tests)")
    ap.add_argument("--json", metavar="PATH", help="also write the numbers as JSON")
    b = ap.add_argument_group("backboard")
    b.add_argument("--chunks", type=int, default=300, help="pieces per reply (300)")
    b.add_argument("--chunk-chars", type=int, default=8, help="characters a piece (8)")
    b.add_argument("--delays-ms", default="0,2",
                   help="the fake's pause between pieces, one case each (0,2)")
    b.add_argument("--texts", default="prose,braces", help="prose,braces")
    b.add_argument("--pairs", type=int, default=20, help="request pairs per block (20)")
    b.add_argument("--blocks", type=int, default=4, help="blocks per case (4)")
    b.add_argument("--max-seconds", type=float, default=150.0, help="cap per case (150)")
    c = ap.add_argument_group("cli")
    c.add_argument("--pool-size", type=int, default=3, help="POOL_SIZE (3)")
    c.add_argument("--reply", type=int, default=400, help="characters a reply (400)")
    c.add_argument("--delta", type=float, default=0.01,
                   help="seconds between 8-character deltas (0.01: 400 characters in 0.5 s)")
    c.add_argument("--startup", type=float, default=0.5,
                   help="the fake CLI's start-up seconds before it reads stdin (0.5)")
    c.add_argument("--requests", type=int,
                   help="warm and back-to-back requests (12; 6 with --real); cold: half")
    c.add_argument("--real", action="store_true", help="the real Claude Code CLI instead, "
                   "against the fake Anthropic API (CLAUDE_CODE_BIN or .cc/node_modules)")
    ap.add_argument("--serve-anthropic", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve_anthropic is None and args.scenario is None:
        ap.error("--scenario is required")
    return args


async def backboard(args: argparse.Namespace, children: dict[str, Child]) -> dict[str, Any]:
    quick = args.quick
    cases = [bench_backboard.Case(text, float(ms) / 1000, args.chunks, args.chunk_chars)
             for ms in args.delays_ms.split(",") for text in args.texts.split(",")]
    pairs, blocks, warmup = (2, 2, 1) if quick else (args.pairs, args.blocks, 5)
    http = await bench_backboard.over_http(cases, pairs, blocks, warmup, children,
                                           args.max_seconds)
    inproc = await bench_backboard.in_process(args.chunks if quick else 5000, args.chunk_chars,
                                        1 if quick else 7)
    bench_backboard.print_in_process(inproc)
    return {"http": http, "in_process": inproc}


async def cli(args: argparse.Namespace, children: dict[str, Child]) -> dict[str, Any]:
    real = bench_cli_pool.real_cli() if args.real else None
    if args.real and real is None:
        raise RuntimeError("no real Claude Code CLI: set CLAUDE_CODE_BIN")
    setup = bench_cli_pool.Setup(args.pool_size, args.reply, args.delta, args.startup, real)
    startup = "its own start-up" if real else f"start-up {setup.startup:g} s"
    source = "the fake Anthropic API streams" if real else "the fake CLI streams"
    print(f"cli: {real or 'the fake CLI'}, pool {setup.pool}; {source} {setup.reply} "
          f"characters in deltas of 8, {setup.delta:g} s apart; {startup}")
    results = await bench_cli_pool.run(setup, args.quick, children, args.requests)
    return {"setup": vars(setup), "results": results}


def failed(doc: dict[str, Any]) -> bool:
    """Answers that failed where none should (a burst's 503s are what it measures)."""
    if "http" in doc:
        return any(p["failed"] for case in doc["http"] for p in case["paths"].values())
    return any(r["failed"] for r in doc["results"] if r["scenario"] != "burst")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_anthropic is not None:
        bench_cli_pool.serve_anthropic(args.serve_anthropic, args.chunks, args.delta)
        return 0
    signal.signal(signal.SIGTERM, lambda *_: signal.raise_signal(signal.SIGINT))
    raise_open_files()
    children: dict[str, Child] = {}
    print(f"bench_backends: {args.scenario}, load average {load_text()}")
    try:
        run = backboard if args.scenario == "backboard" else cli
        doc = asyncio.run(run(args, children))
    except RuntimeError as exc:
        print(f"bench_backends: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nbench_backends: interrupted", file=sys.stderr)
        return 130
    finally:
        for child in children.values():
            stop_tree(child)
    print(f"\nbench_backends: load average at the end {load_text()}")
    if args.json:
        options = orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS  # statuses by number
        Path(args.json).write_bytes(orjson.dumps(doc, option=options))
    return 1 if failed(doc) else 0


if __name__ == "__main__":
    sys.exit(main())

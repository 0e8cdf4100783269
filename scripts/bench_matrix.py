#!/usr/bin/env python3
"""Run scripts/bench.py under several configurations, interleaved, and compare them.

A configuration is a name and the bench arguments that make it (a store with
``--proxy-arg``, an older proxy with ``--proxy-root``); the arguments after ``--`` are
shared by every run. Each round runs every configuration once, the order reversed every
other round (A B, B A, ...), so a drift in the machine's load reaches all alike. Each
run's JSON and output are kept in ``--out``; the machine's load average is read before
and after each run. The table at the end gives, per workload, scenario and direction,
each run's proxy numbers (p50 total and time to first content for latency, requests per
second for throughput, with the direct path's beside them) and the spread per
configuration (min to max).

    .venv/bin/python scripts/bench_matrix.py --repeats 2 --out /tmp/seam \\
        --config preseam="--proxy-root /work/wt-preseam" --config main= \\
        -- --workload light,claude-code --scenarios latency,throughput \\
        --directions a2o,relay-openai --requests 2000

``--report DIR`` prints the table again from a finished ``--out`` folder.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from statistics import median
from typing import Any

import orjson

HERE = Path(__file__).resolve().parent


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", action="append", default=[], metavar="NAME=ARGS",
                    help="a configuration: its name and its bench arguments (shell words)")
    ap.add_argument("--repeats", type=int, default=2, help="rounds (2)")
    ap.add_argument("--out", type=Path, help="folder for each run's JSON and output")
    ap.add_argument("--report", type=Path, nargs="+", metavar="DIR",
                    help="only print the table of finished runs (several folders: pooled)")
    ap.add_argument("--timeout", type=float, default=1800, help="per bench run, seconds (1800)")
    ap.add_argument("shared", nargs="*", help="after --: arguments every run gets")
    return ap.parse_args(argv)


def configs(specs: list[str]) -> dict[str, list[str]]:
    out = {}
    for spec in specs:
        name, sep, words = spec.partition("=")
        if not sep or not name:
            raise SystemExit(f"bench_matrix: --config wants NAME=ARGS, got {spec!r}")
        out[name] = shlex.split(words)
    return out


def run_all(args: argparse.Namespace) -> Path:
    plan = configs(args.config)
    if not plan or args.out is None:
        raise SystemExit("bench_matrix: give --out and at least one --config")
    args.out.mkdir(parents=True, exist_ok=True)
    runs: list[dict[str, Any]] = []
    for round_no in range(args.repeats):
        order = list(plan) if round_no % 2 == 0 else list(plan)[::-1]
        for name in order:
            tag = f"{name}-{round_no + 1}"
            cmd = [sys.executable, str(HERE / "bench.py"), "--no-progress",
                   "--json", str(args.out / f"{tag}.json"), *plan[name], *args.shared]
            before, start = load_average(), time.monotonic()
            print(f"bench_matrix: {tag}: {shlex.join(cmd[1:])} (load {before})", flush=True)
            with (args.out / f"{tag}.txt").open("w") as log:
                done = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT,
                                      timeout=args.timeout, check=False)
            runs.append({"config": name, "round": round_no + 1, "tag": tag, "rc": done.returncode,
                         "load_before": before, "load_after": load_average(),
                         "seconds": round(time.monotonic() - start, 1)})
            print(f"bench_matrix: {tag} exit {done.returncode} in {runs[-1]['seconds']} s "
                  f"(load {runs[-1]['load_after']})", flush=True)
            (args.out / "runs.json").write_bytes(orjson.dumps(runs, option=orjson.OPT_INDENT_2))
    return args.out


def rows(folders: list[Path]) -> list[tuple[str, list[str]]]:
    """(a heading, its lines) per workload, scenario and direction."""
    found: dict[tuple[str, str, str], list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    for folder in folders:
        pooled = len(folders) > 1
        for run in orjson.loads((folder / "runs.json").read_bytes()):
            path = folder / f"{run['tag']}.json"
            if path.exists():
                shown = f"{folder.name}/{run['tag']}" if pooled else run["tag"]
                scenarios(found, {**run, "tag": shown}, path)
    out = []
    for (workload, scenario, direction), got in found.items():
        lines = [describe(run, sc) for run, sc in got]
        lines += spread(scenario, got)
        out.append((f"{workload} {scenario} {direction}", lines))
    return out


def scenarios(found: dict[tuple[str, str, str], list[tuple[dict[str, Any], dict[str, Any]]]],
              run: dict[str, Any], path: Path) -> None:
    for sc in orjson.loads(path.read_bytes())["scenarios"]:
        key = (sc["workload"], sc["scenario"], sc["direction"])
        found.setdefault(key, []).append((run, sc))


def value(scenario: str, sc: dict[str, Any]) -> float:
    """The number a configuration is judged by: p50 total (ms) or req/s of the proxy."""
    proxy = sc["paths"]["proxy"]
    return float(proxy["total_ms"][0] if scenario == "latency" else proxy["rps"])


def describe(run: dict[str, Any], sc: dict[str, Any]) -> str:
    direct, proxy = sc["paths"]["direct"], sc["paths"].get("proxy")
    head = f"  {run['tag']:<20}"
    if proxy is None:
        return head + "no proxy path"
    failed = f", {proxy['failed']} failed" if proxy["failed"] else ""
    load = f"load {run['load_before']} -> {run['load_after']}"
    if sc["scenario"] == "latency":
        added = proxy["total_ms"][0] - direct["total_ms"][0]
        return (head + f"proxy p50 total {proxy['total_ms'][0]:7.2f} ms (added {added:+.2f}), "
                f"content p50 {proxy['ttfc_ms'][0]:6.2f} ms; direct p50 "
                f"{direct['total_ms'][0]:6.2f} ms{failed}; {load}")
    ratio = proxy["rps"] / direct["rps"] if direct["rps"] else float("nan")
    return (head + f"proxy {proxy['rps']:7.1f} req/s, direct {direct['rps']:7.1f} req/s, "
            f"ratio {ratio:.3f}, proxy p50 total {proxy['total_ms'][0]:.1f} ms{failed}; {load}")


def spread(scenario: str, got: list[tuple[dict[str, Any], dict[str, Any]]]) -> list[str]:
    by: dict[str, list[float]] = {}
    ratios: dict[str, list[float]] = {}
    for run, sc in got:
        if "proxy" not in sc["paths"]:
            continue
        by.setdefault(run["config"], []).append(value(scenario, sc))
        direct = sc["paths"]["direct"]
        base = direct["total_ms"][0] if scenario == "latency" else direct["rps"]
        mine = value(scenario, sc)
        ratios.setdefault(run["config"], []).append(mine - base if scenario == "latency"
                                                    else mine / base)
    unit, rel = ("ms p50 total", "added ms") if scenario == "latency" else ("req/s", "ratio")
    return [f"  => {name:<12} {unit} {min(v):.2f}-{max(v):.2f} (median {median(v):.2f}); "
            f"{rel} {min(ratios[name]):.3f}-{max(ratios[name]):.3f} (median "
            f"{median(ratios[name]):.3f})" for name, v in by.items()]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    folders = args.report or [run_all(args)]
    print(f"\n== bench_matrix: {', '.join(map(str, folders))}")
    for heading, lines in rows(folders):
        print(heading)
        print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

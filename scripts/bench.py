#!/usr/bin/env python3
"""Benchmark: what the proxy adds to a streaming request, measured against the direct path.

Its job. Start two fast fake upstreams (OpenAI and Anthropic, ``bench_upstreams.py``) and two
proxies (``python -m proxy`` from this repository, one per upstream dialect), each in its own
process, all on 127.0.0.1. Then, per direction, send the same streaming requests two ways in
one run, *direct* (to the upstream itself) and *proxy*:

- ``a2o``: direct = an OpenAI body to the OpenAI upstream; proxy = an Anthropic body to the
  OpenAI-dialect proxy's ``/v1/messages`` (translated).
- ``o2a``: direct = an Anthropic body to the Anthropic upstream; proxy = an OpenAI body (with
  ``stream_options.include_usage``) to the Anthropic-dialect proxy's ``/v1/chat/completions``.
- ``relay-openai``: direct as a2o; proxy = the same OpenAI body to the OpenAI-dialect proxy's
  ``/v1/chat/completions`` (relayed byte for byte).
- ``relay-anthropic``: direct as o2a; proxy = the same Anthropic body to the
  Anthropic-dialect proxy's ``/v1/messages`` (relayed byte for byte).

How to run (from the repository root)::

    .venv/bin/python scripts/bench.py                 # full run, under ~3 minutes
    .venv/bin/python scripts/bench.py --quick         # smoke test, every direction
    .venv/bin/python scripts/bench.py --directions o2a,relay-anthropic --json out.json
    .venv/bin/python scripts/bench.py --concurrency 1,16,64 --requests 500
    .venv/bin/python scripts/bench.py --no-proxy      # the direct paths only

What it measures. Every upstream answer is a precomputed stream of about 200 chunks, each its
own write (see bench_upstreams.py). Per request: time to first byte (first body bytes
received) and total time (body fully read); per path: p50/p95/p99 of both, and requests per
second. So that drift hits both paths alike: at concurrency 1, direct and proxy requests
alternate (A B, B A, ...), and req/s is 1 / mean total time; at concurrency C > 1, C workers
share a fixed number of requests, run in halves ordered direct, proxy, proxy, direct, and
req/s is requests / wall time. Warm-up requests before each measurement are not counted. Each
warm-up and measurement stops early after --max-seconds, so even a slow proxy finishes in
minutes; the "ok" column counts what was measured. An answer must end with ``data: [DONE]``
(OpenAI) or ``event: message_stop`` (Anthropic), or it counts as failed.

Targets (2-core machine): at concurrency 1 the proxy adds at most 1 ms to the p50 total time
when it translates (a2o, o2a), 0.5 ms when it relays; at concurrency 64 it serves at least
0.5 (translating) or 0.70 (relaying) of the direct path's requests per second. A missed
target is reported, not an error: the exit code is 1 only when requests failed, 2 when the
benchmark could not start.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, NamedTuple

import aiohttp
import orjson

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # imported from elsewhere than `python scripts/bench.py`
    sys.path.insert(0, str(HERE))

from bench_upstreams import (  # noqa: E402
    ANTHROPIC_TEXT_DELTAS,
    HOST,
    MODEL,
    OPENAI_CONTENT_CHUNKS,
)

REPO = HERE.parent
DIALECTS = ("openai", "anthropic")
PCTS = (50, 95, 99)
REQUEST_ID = re.compile(r"req_\w+")
Options = argparse.Namespace
TARGET_ADDED_AT, TARGET_RATIO_AT = 1, 64  # the concurrencies the two targets apply at


class Direction(NamedTuple):
    name: str
    dialect: str  # the upstream's, so also which proxy
    client: str  # the dialect the proxy is spoken to in
    max_added_ms: float  # proxy-added p50 total time at concurrency 1
    min_ratio: float  # proxy/direct requests per second at concurrency 64


DIRECTIONS = {
    d.name: d
    for d in (
        Direction("a2o", "openai", "anthropic", 1.0, 0.5),
        Direction("o2a", "anthropic", "openai", 1.0, 0.5),
        Direction("relay-openai", "openai", "openai", 0.5, 0.70),
        Direction("relay-anthropic", "anthropic", "anthropic", 0.5, 0.70),
    )
}


# --- child processes ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log: IO[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def log_tail(self, limit: int = 2000) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-limit:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def spawn(name: str, args: Sequence[str], port: int) -> Child:
    """Start `python ARGS` in the repository; its own session, so Ctrl-C reaches only us."""
    log = tempfile.TemporaryFile(prefix=f"bench-{name}-")  # noqa: SIM115 (Child.stop closes it)
    cmd, null, out = [sys.executable, *args], subprocess.DEVNULL, subprocess.STDOUT
    proc = subprocess.Popen(
        cmd, cwd=REPO, stdin=null, stdout=log, stderr=out, start_new_session=True
    )
    return Child(name, proc, log, port)


async def wait_healthy(session: aiohttp.ClientSession, child: Child) -> None:
    url, deadline = f"{child.url}/health", time.monotonic() + 20
    while time.monotonic() < deadline:
        if child.proc.poll() is not None:
            raise RuntimeError(f"{child.name} exited: {child.proc.returncode}\n{child.log_tail()}")
        try:
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=1)) as resp:
                if resp.status == 200:
                    return
        except (aiohttp.ClientError, TimeoutError):
            pass
        await asyncio.sleep(0.05)
    raise RuntimeError(f"{child.name}: {url} not healthy within 20 s:\n{child.log_tail()}")


# --- the load generator ---------------------------------------------------------------------------


class Target(NamedTuple):
    name: str
    url: str
    body: bytes
    headers: dict[str, str]
    terminator: bytes  # a complete answer ends with this


class Sample(NamedTuple):
    ttfb: float  # seconds
    total: float
    error: str | None = None


REQUEST = {"model": MODEL, "max_tokens": 1024, "messages": [{"role": "user", "content": "hi"}]}
JSON = {"Content-Type": "application/json"}
CLIENTS = {  # a client of each dialect: path, body, headers, how a complete answer ends
    "openai": (
        "/v1/chat/completions",
        orjson.dumps({**REQUEST, "stream": True, "stream_options": {"include_usage": True}}),
        {**JSON, "Authorization": "Bearer bench"},
        b"data: [DONE]\n\n",
    ),
    "anthropic": (
        "/v1/messages",
        orjson.dumps({**REQUEST, "stream": True}),
        {**JSON, "x-api-key": "bench", "anthropic-version": "2023-06-01"},
        b"event: message_stop",
    ),
}


def make_targets(direction: Direction, upstream: str, proxy: str | None) -> list[Target]:
    """The direct path (the upstream's own dialect), then the proxy path (the client's)."""
    names = [("direct", upstream, direction.dialect)]
    names += [("proxy", proxy, direction.client)] if proxy else []
    out = []
    for name, base, dialect in names:
        path, body, headers, end = CLIENTS[dialect]
        out.append(Target(name, base + path, body, headers, end))
    return out


@dataclass
class Runner:
    """Sends requests over one session; ends a run early on too many failures or at its deadline."""

    session: aiohttp.ClientSession
    timeout: float  # per request
    max_failures: int
    seconds: float  # per run
    errors: Counter[str] = field(default_factory=Counter)
    deadline: float = math.inf

    def start(self) -> Runner:
        self.deadline = time.monotonic() + self.seconds
        return self

    @property
    def exhausted(self) -> bool:
        failed = sum(self.errors.values()) > self.max_failures
        return failed or time.monotonic() > self.deadline

    async def request(self, target: Target) -> Sample:
        sample = await self.send(target)
        if sample.error is not None:
            self.errors[sample.error] += 1
        return sample

    async def send(self, target: Target) -> Sample:
        start, ttfb, tail, post = time.perf_counter(), 0.0, b"", self.session.post
        try:
            async with asyncio.timeout(self.timeout):
                async with post(target.url, data=target.body, headers=target.headers) as resp:
                    if resp.status != 200:
                        text = REQUEST_ID.sub("req_*", await resp.text())  # so alike ones group
                        return Sample(0.0, 0.0, f"HTTP {resp.status}: {text[:200]}")
                    async for chunk in resp.content.iter_any():
                        if not ttfb:
                            ttfb = time.perf_counter() - start
                        tail = (tail + chunk)[-200:]
                    total = time.perf_counter() - start
        except (aiohttp.ClientError, TimeoutError) as exc:
            return Sample(0.0, 0.0, f"{target.name}: {type(exc).__name__}: {exc}"[:200])
        if target.terminator not in tail:
            return Sample(ttfb, total, f"{target.name}: stream ended without {target.terminator!r}")
        return Sample(ttfb, total)

    async def interleaved(self, paths: list[Target], count: int) -> dict[str, list[Sample]]:
        """One request at a time, alternating the paths, the order flipped every round."""
        out: dict[str, list[Sample]] = {t.name: [] for t in paths}
        for i in range(count):
            for target in paths if i % 2 == 0 else paths[::-1]:
                out[target.name].append(await self.request(target))
            if self.exhausted:
                break
        return out

    async def concurrent(
        self, target: Target, count: int, workers: int
    ) -> tuple[list[Sample], float]:
        """`workers` tasks share `count` requests; returns the samples and the wall time."""
        tickets, out = iter(range(count)), list[Sample]()

        async def worker() -> None:
            for _ in tickets:
                if self.exhausted:
                    return
                out.append(await self.request(target))

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(workers)))
        return out, time.perf_counter() - start


# --- statistics and the report --------------------------------------------------------------------


def percentile(values: Sequence[float], pct: float) -> float:
    """Linear interpolation between closest ranks; `values` sorted; NaN when empty."""
    if not values:
        return math.nan
    rank = (len(values) - 1) * pct / 100
    low = math.floor(rank)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (rank - low)


@dataclass
class PathStats:
    ok: int
    failed: int
    ttfb_ms: list[float]  # p50, p95, p99
    total_ms: list[float]
    rps: float

    @classmethod
    def of(cls, samples: list[Sample], wall: float | None) -> PathStats:
        """`wall` None: sequential requests, so req/s is 1 / mean total time."""
        good = [s for s in samples if s.error is None]
        ttfb = sorted(s.ttfb * 1000 for s in good)
        total = sorted(s.total * 1000 for s in good)
        busy = wall if wall is not None else sum(total) / 1000
        rps = len(good) / busy if busy else math.nan
        pcts = [percentile(ttfb, p) for p in PCTS], [percentile(total, p) for p in PCTS]
        return cls(len(good), len(samples) - len(good), *pcts, rps)

    def row(self) -> list[float]:
        return [*self.ttfb_ms, *self.total_ms, self.rps]


@dataclass
class Check:
    name: str
    value: float
    target: str
    passed: bool


@dataclass
class Scenario:
    direction: str
    concurrency: int
    requests: int
    warmup: int
    paths: dict[str, PathStats]
    errors: dict[str, int]
    checks: list[Check] = field(default_factory=list)

    def evaluate(self, d: Direction) -> None:
        if "proxy" not in self.paths:
            return
        direct, proxy = self.paths["direct"], self.paths["proxy"]
        if self.concurrency == TARGET_ADDED_AT:
            added = proxy.total_ms[0] - direct.total_ms[0]
            name = f"proxy-added p50 total (ms), c={TARGET_ADDED_AT}"
            self.checks.append(Check(name, added, f"<= {d.max_added_ms}", added <= d.max_added_ms))
        if self.concurrency == TARGET_RATIO_AT:
            ratio = proxy.rps / direct.rps
            name = f"throughput ratio (proxy/direct), c={TARGET_RATIO_AT}"
            self.checks.append(Check(name, ratio, f">= {d.min_ratio}", ratio >= d.min_ratio))


def table_row(label: str, cells: Sequence[str]) -> str:
    return f"{label:<14}" + "".join(f"{c:>10}" for c in cells)


def print_scenario(sc: Scenario) -> None:
    order = "alternating" if sc.concurrency == 1 else "halves A B B A"
    print(f"\n== {sc.direction}, concurrency {sc.concurrency}: ", end="")
    print(f"{sc.requests} requests per path ({order}), {sc.warmup} warm-up")
    print(table_row("path", ["ttfb p50", "p95", "p99", "total p50", "p95", "p99", "req/s"]), end="")
    print(f"{'ok':>7}{'failed':>7}")
    for name, st in sc.paths.items():
        print(table_row(name, [f"{v:.3f}" for v in st.row()[:-1]] + [f"{st.rps:.1f}"]), end="")
        print(f"{st.ok:>7}{st.failed:>7}")
    if "proxy" in sc.paths:
        pairs = zip(sc.paths["proxy"].row(), sc.paths["direct"].row(), strict=True)
        ratios = [f"{p / d:.2f}x" if d and math.isfinite(p / d) else "-" for p, d in pairs]
        print(table_row("proxy/direct", ratios))
    for check in sc.checks:
        print(f"{check.name}: {check.value:.3f}  (target {check.target})  {verdict(check)}")
    for error, n in sc.errors.items():
        print(f"  failed x{n}: {error}")


def verdict(check: Check) -> str:
    return "PASS" if check.passed else "MISS"


def print_summary(scenarios: list[Scenario]) -> None:
    checks = [(sc.direction, c) for sc in scenarios for c in sc.checks]
    if not checks:
        return
    print("\n== targets")
    for direction, check in checks:
        line = f"{direction:<16}{check.name:<42}{check.value:>9.3f}  {check.target:<8}"
        print(f"{line}  {verdict(check)}")
    passed = sum(c.passed for _, c in checks)
    print(f"{passed} of {len(checks)} targets met")


# --- orchestration --------------------------------------------------------------------------------


async def concurrent_abba(
    runner: Runner, paths: list[Target], conc: int, count: int, warmup: int
) -> dict[str, PathStats]:
    """Warm up each path, then run half the requests in the order A B, the other half B A."""
    for target in paths:
        await runner.start().concurrent(target, warmup, conc)
    samples: dict[str, list[Sample]] = {t.name: [] for t in paths}
    walls = dict.fromkeys(samples, 0.0)
    for i, target in enumerate(paths + paths[::-1]):
        half = count // 2 if i < len(paths) else count - count // 2
        got, wall = await runner.start().concurrent(target, half, conc)
        samples[target.name] += got
        walls[target.name] += wall
    return {name: PathStats.of(got, walls[name]) for name, got in samples.items()}


async def run_scenario(
    session: aiohttp.ClientSession, d: Direction, paths: list[Target], conc: int, args: Options
) -> Scenario:
    count = args.requests or (30 if args.quick else 2000) * (1 if conc == 1 else 5)
    warmup = args.warmup if args.warmup is not None else (5 if args.quick else 50) * -(-conc // 16)
    runner = Runner(session, args.timeout, args.max_failures, args.max_seconds)
    if conc == 1:
        await runner.start().interleaved(paths, warmup)
        samples = await runner.start().interleaved(paths, count)
        stats = {name: PathStats.of(s, None) for name, s in samples.items()}
    else:
        stats = await concurrent_abba(runner, paths, conc, count, warmup)
    scenario = Scenario(d.name, conc, count, warmup, stats, dict(runner.errors))
    scenario.evaluate(d)
    return scenario


async def bench(args: argparse.Namespace, children: dict[str, Child]) -> list[Scenario]:
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=args.timeout)
    connector = aiohttp.TCPConnector(limit=max(args.concurrency) + 4)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        for child in children.values():
            await wait_healthy(session, child)
        scenarios = []
        for d in (DIRECTIONS[name] for name in args.directions):
            proxy = children.get(f"proxy-{d.dialect}")
            upstream = children[f"upstream-{d.dialect}"].url
            paths = make_targets(d, upstream, proxy.url if proxy else None)
            for conc in args.concurrency:
                scenarios.append(await run_scenario(session, d, paths, conc, args))
                print_scenario(scenarios[-1])
        return scenarios


def write_json(path: str, args: argparse.Namespace, scenarios: list[Scenario]) -> None:
    machine = {"cpus": os.cpu_count(), "python": platform.python_version()}
    doc = {
        "machine": machine,
        "chunks": {"openai": OPENAI_CONTENT_CHUNKS + 2, "anthropic": ANTHROPIC_TEXT_DELTAS + 3},
        "directions": args.directions,
        "concurrency": args.concurrency,
        "scenarios": [asdict(s) for s in scenarios],
    }
    Path(path).write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))


def direction_list(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in DIRECTIONS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"choose from {','.join(DIRECTIONS)}, got {text!r}")
    return list(dict.fromkeys(names))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="Benchmark the proxy against the direct paths.")
    add = ap.add_argument
    add("--requests", type=int, help="per path and scenario (default 2000 at c=1, else 10000)")
    add(
        "--concurrency",
        type=lambda s: [int(c) for c in s.split(",")],
        default=[1, 64],
        help="e.g. 1,64",
    )
    add("--directions", type=direction_list, default=list(DIRECTIONS), help=",".join(DIRECTIONS))
    add("--warmup", type=int, help="warm-up requests per path (default 50 per 16 of concurrency)")
    add("--timeout", type=float, default=30.0, help="per-request timeout, seconds (default 30)")
    add("--max-failures", type=int, default=20, help="end a scenario after this many failures")
    add("--max-seconds", type=float, default=25.0, help="time cap per warm-up or measurement")
    add("--json", metavar="PATH", help="also write the numbers as JSON")
    add("--quick", action="store_true", help="a few requests only (30 at c=1, else 150)")
    add("--no-proxy", action="store_true", help="measure the direct paths only")
    add("--proxy-arg", action="append", default=[], help="extra argument for both proxies")
    return ap.parse_args(argv)


def proxy_flags(dialect: str, upstream: Child, port: int) -> list[str]:
    flags = ["--host", HOST, "--port", str(port), "--upstream-dialect", dialect]
    if dialect == "openai":
        return [*flags, "--upstream", f"{upstream.url}/v1", "--model", MODEL]
    return [*flags, "--upstream", upstream.url, "--api-key", "sk-bench"]


def start_children(args: argparse.Namespace, children: dict[str, Child]) -> None:
    """A fake upstream per dialect the chosen directions need, and a proxy in front of each."""
    needed = {DIRECTIONS[name].dialect for name in args.directions}
    for dialect in (d for d in DIALECTS if d in needed):
        port, name = free_port(), f"upstream-{dialect}"
        script = str(HERE / "bench_upstreams.py")
        upstream = children[name] = spawn(name, [script, str(port), dialect], port)
        if not args.no_proxy:
            port, name = free_port(), f"proxy-{dialect}"
            flags = proxy_flags(dialect, upstream, port)
            children[name] = spawn(name, ["-m", "proxy", *flags, *args.proxy_arg], port)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with it ignored
    signal.signal(signal.SIGTERM, lambda *_: signal.raise_signal(signal.SIGINT))  # stop children
    children: dict[str, Child] = {}
    try:
        start_children(args, children)
        print(f"bench: ~200-chunk streams, {os.cpu_count()} CPUs, ", end="")
        print(f"Python {platform.python_version()}, aiohttp {aiohttp.__version__}")
        scenarios = asyncio.run(bench(args, children))
    except RuntimeError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130
    finally:
        for child in children.values():
            child.stop()
    print_summary(scenarios)
    if args.json:
        write_json(args.json, args, scenarios)
    return 1 if any(sc.errors for sc in scenarios) else 0  # warm-up failures count too


if __name__ == "__main__":
    sys.exit(main())

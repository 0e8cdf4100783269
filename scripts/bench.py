#!/usr/bin/env python3
"""Benchmark: what the proxy adds to a streaming request, measured against the direct path.

Its job. Start a fast fake OpenAI-compatible upstream and the proxy (``python -m proxy`` from
this repository), each in its own process, then send the same streaming requests two ways in
one run: *direct* (an OpenAI body to the upstream's ``/v1/chat/completions``) and *proxy* (an
Anthropic body to the proxy's ``/v1/messages``, which the proxy turns into that same upstream
call). Everything is on 127.0.0.1.

How to run (from the repository root)::

    .venv/bin/python scripts/bench.py                 # full run, under ~2 minutes
    .venv/bin/python scripts/bench.py --quick         # smoke test, a few seconds
    .venv/bin/python scripts/bench.py --concurrency 1,16,64 --requests 500 --json out.json
    .venv/bin/python scripts/bench.py --no-proxy      # the direct path only

What it measures. Every upstream answer is the same precomputed stream of 200 chunks (role
chunk, 198 content chunks of a few words, finish chunk), then a usage chunk and ``[DONE]``,
each chunk its own write. Per request: time to first byte (first body bytes received) and
total time (body fully read); per path: p50/p95/p99 of both, and requests per second. So that
drift hits both paths alike: at concurrency 1, direct and proxy requests alternate (A B, B A,
...), and req/s is 1 / mean total time; at concurrency C > 1, C workers share a fixed number of
requests, run in halves ordered direct, proxy, proxy, direct, and req/s is requests / wall
time. Warm-up requests before each measurement are not counted. Each warm-up and measurement
stops early after --max-seconds, so even a slow proxy finishes in minutes; the "ok" column
counts what was measured. A proxy answer must end with ``event: message_stop`` (a direct one
with ``data: [DONE]``), or it counts as failed.

Targets (2-core machine, 200-chunk streams): at concurrency 1 the proxy adds at most 1 ms to
the p50 total time; at concurrency 64 it serves at least half the direct path's requests per
second. A missed target is reported, not an error: the exit code is 1 only when requests
failed, 2 when the benchmark could not start.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import platform
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
from typing import IO, Any, NamedTuple

import aiohttp
import orjson
from aiohttp import web

HOST = "127.0.0.1"
MODEL = "fake-model"
REPO = Path(__file__).resolve().parent.parent
CONTENT_CHUNKS = 198
TARGET_ADDED_MS, TARGET_ADDED_AT = 1.0, 1  # proxy-added p50 total time, at concurrency 1
TARGET_RATIO, TARGET_RATIO_AT = 0.5, 64  # proxy/direct requests per second, at concurrency 64
WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "while", "tokens"]
PCTS = (50, 95, 99)


# --- the fake upstream (its own process: `bench.py --serve-upstream PORT`) ------------------------


def openai_stream() -> list[bytes]:
    """The upstream's answer, one element per write: 200 choice chunks, usage, [DONE]."""
    head = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1741570283}
    head |= {"model": MODEL, "system_fingerprint": "fp_bench"}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {**head, "choices": [choice], "usage": None}

    words = [" ".join(WORDS[(i + k) % len(WORDS)] for k in range(3)) for i in range(CONTENT_CHUNKS)]
    usage = {"prompt_tokens": 8, "completion_tokens": 600, "total_tokens": 608}
    events = [chunk({"role": "assistant", "content": "", "refusal": None})]
    events += [chunk({"content": text + " "}) for text in words]
    events += [chunk({}, "stop"), {**head, "choices": [], "usage": usage}]
    return [b"data: " + orjson.dumps(e) + b"\n\n" for e in events] + [b"data: [DONE]\n\n"]


def serve_upstream(port: int) -> None:
    chunks = openai_stream()
    headers = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}

    async def completions(request: web.Request) -> web.StreamResponse:
        await request.read()
        resp = web.StreamResponse(headers=headers)
        await resp.prepare(request)
        for chunk in chunks:
            await resp.write(chunk)
        await resp.write_eof()
        return resp

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/v1/chat/completions", completions)
    app.router.add_get("/health", health)
    web.run_app(app, host=HOST, port=port, print=None, access_log=None, shutdown_timeout=1)


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


def spawn(name: str, args: Sequence[str]) -> Child:
    """Start `python ARGS` in the repository; its own session, so Ctrl-C reaches only us."""
    log = tempfile.TemporaryFile(prefix=f"bench-{name}-")  # noqa: SIM115 (Child.stop closes it)
    cmd, null, out = [sys.executable, *args], subprocess.DEVNULL, subprocess.STDOUT
    proc = subprocess.Popen(
        cmd, cwd=REPO, stdin=null, stdout=log, stderr=out, start_new_session=True
    )
    return Child(name, proc, log)


async def wait_healthy(session: aiohttp.ClientSession, child: Child, url: str) -> None:
    deadline = time.monotonic() + 20
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


def make_targets(upstream: str, proxy: str | None) -> list[Target]:
    request = {"model": MODEL, "max_tokens": 1024, "messages": [{"role": "user", "content": "hi"}]}
    request["stream"] = True
    openai = orjson.dumps({**request, "stream_options": {"include_usage": True}})
    json = {"Content-Type": "application/json"}
    url = f"{upstream}/v1/chat/completions"
    bearer = {**json, "Authorization": "Bearer bench"}
    out = [Target("direct", url, openai, bearer, b"data: [DONE]\n\n")]
    if proxy:
        headers = {**json, "x-api-key": "bench", "anthropic-version": "2023-06-01"}
        url = f"{proxy}/v1/messages"
        out.append(Target("proxy", url, orjson.dumps(request), headers, b"event: message_stop"))
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
                        return Sample(0.0, 0.0, f"HTTP {resp.status}: {(await resp.text())[:200]}")
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
    concurrency: int
    requests: int
    warmup: int
    paths: dict[str, PathStats]
    errors: dict[str, int]
    checks: list[Check] = field(default_factory=list)

    def evaluate(self) -> None:
        if "proxy" not in self.paths:
            return
        direct, proxy = self.paths["direct"], self.paths["proxy"]
        if self.concurrency == TARGET_ADDED_AT:
            added = proxy.total_ms[0] - direct.total_ms[0]
            name, target = "proxy-added p50 total (ms)", f"<= {TARGET_ADDED_MS}"
            self.checks.append(Check(name, added, target, added <= TARGET_ADDED_MS))
        if self.concurrency == TARGET_RATIO_AT:
            ratio = proxy.rps / direct.rps
            name, target = "throughput ratio (proxy/direct)", f">= {TARGET_RATIO}"
            self.checks.append(Check(name, ratio, target, ratio >= TARGET_RATIO))


def table_row(label: str, cells: Sequence[str]) -> str:
    return f"{label:<14}" + "".join(f"{c:>10}" for c in cells)


def print_scenario(sc: Scenario) -> None:
    order = "alternating" if sc.concurrency == 1 else "halves A B B A"
    print(f"\n== concurrency {sc.concurrency}: {sc.requests} requests per path ({order}),", end=" ")
    print(f"{sc.warmup} warm-up")
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
        verdict = "PASS" if check.passed else "MISS"
        print(f"{check.name}: {check.value:.3f}  (target {check.target})  {verdict}")
    for error, n in sc.errors.items():
        print(f"  failed x{n}: {error}")


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
    session: aiohttp.ClientSession, paths: list[Target], conc: int, args: argparse.Namespace
) -> Scenario:
    count = args.requests or (30 if args.quick else 1000) * (1 if conc == 1 else 4)
    warmup = args.warmup if args.warmup is not None else (5 if args.quick else 50) * -(-conc // 16)
    runner = Runner(session, args.timeout, args.max_failures, args.max_seconds)
    if conc == 1:
        await runner.start().interleaved(paths, warmup)
        samples = await runner.start().interleaved(paths, count)
        stats = {name: PathStats.of(s, None) for name, s in samples.items()}
    else:
        stats = await concurrent_abba(runner, paths, conc, count, warmup)
    scenario = Scenario(conc, count, warmup, stats, dict(runner.errors))
    scenario.evaluate()
    return scenario


async def bench(args: argparse.Namespace, children: list[Child]) -> list[Scenario]:
    upstream, proxy = children[0], children[1] if len(children) > 1 else None
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=args.timeout)
    connector = aiohttp.TCPConnector(limit=max(args.concurrency) + 4)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await wait_healthy(session, upstream, f"http://{HOST}:{args.upstream_port}/health")
        if proxy is not None:
            await wait_healthy(session, proxy, f"http://{HOST}:{args.proxy_port}/health")
        proxy_url = f"http://{HOST}:{args.proxy_port}" if proxy else None
        paths = make_targets(f"http://{HOST}:{args.upstream_port}", proxy_url)
        scenarios = []
        for conc in args.concurrency:
            scenarios.append(await run_scenario(session, paths, conc, args))
            print_scenario(scenarios[-1])
        return scenarios


def write_json(path: str, scenarios: list[Scenario]) -> None:
    machine = {"cpus": os.cpu_count(), "python": platform.python_version()}
    doc = {
        "machine": machine,
        "chunks": CONTENT_CHUNKS + 2,
        "scenarios": [asdict(s) for s in scenarios],
    }
    Path(path).write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="Benchmark the proxy against the direct path.")
    add = ap.add_argument
    add("--requests", type=int, help="per path and scenario (default 1000 at c=1, else 4000)")
    add(
        "--concurrency",
        type=lambda s: [int(c) for c in s.split(",")],
        default=[1, 64],
        help="e.g. 1,64",
    )
    add("--warmup", type=int, help="warm-up requests per path (default 50 per 16 of concurrency)")
    add("--timeout", type=float, default=30.0, help="per-request timeout, seconds (default 30)")
    add("--max-failures", type=int, default=20, help="end a scenario after this many failures")
    add("--max-seconds", type=float, default=25.0, help="time cap per warm-up or measurement")
    add("--json", metavar="PATH", help="also write the numbers as JSON")
    add("--quick", action="store_true", help="a few requests only (30 at c=1, else 120)")
    add("--no-proxy", action="store_true", help="measure the direct path only")
    add("--proxy-arg", action="append", default=[], help="extra argument for the proxy")
    add("--serve-upstream", type=int, metavar="PORT", help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def start_children(args: argparse.Namespace, children: list[Child]) -> None:
    args.upstream_port, args.proxy_port = free_port(), free_port()
    me = str(Path(__file__).resolve())
    children.append(spawn("upstream", [me, "--serve-upstream", str(args.upstream_port)]))
    if not args.no_proxy:
        upstream = f"http://{HOST}:{args.upstream_port}/v1"
        flags = ["--host", HOST, "--port", str(args.proxy_port), "--upstream", upstream]
        children.append(spawn("proxy", ["-m", "proxy", *flags, "--model", MODEL, *args.proxy_arg]))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_upstream is not None:
        serve_upstream(args.serve_upstream)
        return 0
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with it ignored
    signal.signal(signal.SIGTERM, lambda *_: signal.raise_signal(signal.SIGINT))  # stop children
    children: list[Child] = []
    try:
        start_children(args, children)
        print(f"bench: {CONTENT_CHUNKS + 2}-chunk streams, {os.cpu_count()} CPUs, ", end="")
        print(f"Python {platform.python_version()}, aiohttp {aiohttp.__version__}")
        scenarios = asyncio.run(bench(args, children))
    except RuntimeError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130
    finally:
        for child in children:
            child.stop()
    if args.json:
        write_json(args.json, scenarios)
    return 1 if any(sc.errors for sc in scenarios) else 0  # warm-up failures count too


if __name__ == "__main__":
    sys.exit(main())

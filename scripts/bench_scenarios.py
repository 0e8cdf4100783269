"""The benchmark's scenarios; each sends the same work the direct way and through the proxy.

Every scenario runs per workload (bench_workload.py: ``claude-code``, a 73 KB request, or
``light``, a one-word prompt) and direction:

- ``latency``: one request at a time, direct and proxy alternating (A B, B A, ...).
- ``throughput``: C workers share a fixed number of streaming requests, run in halves
  ordered direct, proxy, proxy, direct; req/s is requests / wall time.
- ``non-streaming``: the same at concurrency 32 with ``"stream": false``.
- ``long-streams``: batches of N streams (1000 of 100 chunks 20 ms apart by default), each
  on a new connection; per path a warm-up batch (its starts spread over a second, so the
  proxy's upstream connections get opened and pooled), then measured batches in the order
  direct, proxy, proxy, direct, whose N connections are all opened at the same instant
  (behind a barrier; --stream-spread-ms spreads them instead). Every answer is checked
  whole; connections lost before the response head are counted. The proxy is a fresh
  process per direction and workload, so its peak resident memory (VmHWM, summed over its
  processes) is this scenario's.

Each scenario also reports the CPU time the load generator, the fake upstream and the
proxy used while each path ran (as a share of one core).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any

from bench_load import (
    CLIENT_PATHS,
    Progress,
    Runner,
    Sample,
    Target,
    request_headers,
    target,
)
from bench_procs import Child, cpu_seconds, io_calls, members, memory_mb
from bench_report import Direction, PathStats, Scenario
from bench_upstreams import DEFAULT_TEXTS, expected_text
from bench_workload import request_body

FreshProxy = Callable[[Direction, str], AbstractAsyncContextManager[Child]]


@dataclass(frozen=True)
class Upstream:
    dialect: str
    base: str  # as the proxy's --upstream takes it: OpenAI ending in /v1, Anthropic without
    key: str
    model: str
    fake: bool  # the built-in fake: the answers are known and can be paced
    pid: int | None = None  # the fake's process

    def endpoint(self, base: str | None = None) -> str:
        root = (base or self.base).rstrip("/")
        if self.dialect == "openai":
            return root + "/chat/completions"
        return root.removesuffix("/v1") + "/v1/messages"  # as the proxy reads an Anthropic base

    def paced(self, chunks: int, delay_ms: int) -> str:
        """The base URL of paced answers (the fake's); a real upstream's own base."""
        if not self.fake:
            return self.base
        suffix = "/v1" if self.dialect == "openai" else ""
        return f"{self.base.removesuffix('/v1')}/paced/{chunks}/{delay_ms}{suffix}"


@dataclass
class Meter:
    """What each process used while a path ran: CPU seconds, read and write system calls."""

    procs: dict[str, int | None]  # name: pid (None: this process)
    used: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # path: name: uses
    pids: dict[str, list[int]] = field(default_factory=dict)  # name: the process's family

    def __post_init__(self) -> None:
        self.pids = {name: members(pid) for name, pid in self.procs.items()}

    @staticmethod
    def _now(pids: list[int]) -> list[float] | None:
        cpu, calls = cpu_seconds(pids), io_calls(pids)
        return None if cpu is None or calls is None else [cpu, *calls]

    @contextmanager
    def measure(self, path: str) -> Iterator[None]:
        before = {name: self._now(pids) for name, pids in self.pids.items()}
        yield
        used = self.used.setdefault(path, {})
        for name, pids in self.pids.items():
            now, then = self._now(pids), before[name]
            if now is not None and then is not None:
                sums = used.setdefault(name, [0.0, 0.0, 0.0])
                for i, (a, b) in enumerate(zip(now, then, strict=True)):
                    sums[i] += a - b

    def shares(self, walls: dict[str, float]) -> dict[str, dict[str, float]]:
        """Per path, each process's share of one core while that path ran."""
        return {path: {proc: round(use[0] / walls[path], 3) for proc, use in used.items()}
                for path, used in self.used.items() if walls.get(path)}

    def per_request(self, counts: dict[str, int]) -> dict[str, dict[str, dict[str, float]]]:
        """Per path and process: CPU milliseconds, reads and writes per request."""
        return {path: {proc: {"cpu_ms": round(cpu * 1000 / counts[path], 3),
                              "reads": round(reads / counts[path], 1),
                              "writes": round(writes / counts[path], 1)}
                       for proc, (cpu, reads, writes) in used.items()}
                for path, used in self.used.items() if counts.get(path)}

    def report(self, walls: dict[str, float], samples: dict[str, list[Sample]]
               ) -> dict[str, Any]:
        counts = {path: len(got) for path, got in samples.items()}
        return {"cpu_share": self.shares(walls), "per_request": self.per_request(counts)}


@dataclass
class Bench:
    args: argparse.Namespace
    upstreams: dict[str, Upstream]  # by dialect
    proxies: dict[str, Child]  # the shared proxy by upstream dialect; empty with --no-proxy
    fresh_proxy: FreshProxy  # a new proxy process for one direction, in front of a base URL

    def runner(self) -> Runner:
        a = self.args
        return Runner(a.timeout, a.max_failures, a.max_seconds)

    def body(self, workload: str, dialect: str, stream: bool) -> bytes:
        a = self.args
        return request_body(workload, dialect, a.model, stream, a.prompt, a.max_tokens)

    def targets(self, d: Direction, workload: str, stream: bool, base: str | None = None,
                proxy: str | None = None, chunks: int | None = None) -> list[Target]:
        """The direct path (the upstream's own dialect), then the proxy path (the client's)."""
        up, a = self.upstreams[d.dialect], self.args
        if base is None and a.chunk_gap_ms:
            base = up.paced(DEFAULT_TEXTS[d.dialect], a.chunk_gap_ms)
        expect = expected_text(d.dialect, chunks) if up.fake else None
        headers = request_headers(d.dialect, up.key)
        body = self.body(workload, d.dialect, stream)
        out = [target("direct", up.endpoint(base), body, headers, d.dialect, stream, expect)]
        if proxy is None and d.dialect in self.proxies:
            proxy = self.proxies[d.dialect].url
        if proxy and not a.no_proxy:
            body = self.body(workload, d.client, stream)
            headers = request_headers(d.client, "bench")
            url = proxy + CLIENT_PATHS[d.client]
            out.append(target("proxy", url, body, headers, d.client, stream, expect))
        return out

    def meter(self, d: Direction, proxy: int | None = None, bench: bool = True) -> Meter:
        """`bench`: measure this process too (not around single requests: the measuring
        itself would count)."""
        procs: dict[str, int | None] = {"bench": None} if bench else {}
        if self.upstreams[d.dialect].pid is not None:
            procs["upstream"] = self.upstreams[d.dialect].pid
        if proxy is None and d.dialect in self.proxies:
            proxy = self.proxies[d.dialect].proc.pid
        if proxy is not None:
            procs["proxy"] = proxy
        return Meter(procs)

    def count(self, given: int | None, quick: int, full: int) -> int:
        return given if given is not None else quick if self.args.quick else full

    def warmup(self, conc: int) -> int:
        return self.count(self.args.warmup, 5, 50) * -(-conc // 16)


def progress(label: str, total: int, seconds: float | None = None) -> Progress:
    return Progress(label, total, seconds)


def scenario(name: str, d: Direction, workload: str, conc: int, count: int, warmup: int,
             stats: dict[str, PathStats], runner: Runner, paths: list[Target],
             extra: dict[str, Any]) -> Scenario:
    runner.close()
    extra["body_bytes"] = {t.name: len(t.body) for t in paths}
    sc = Scenario(name, d.name, conc, count, warmup, stats, dict(runner.errors), extra=extra,
                  workload=workload)
    sc.evaluate(d)
    return sc


async def latency(b: Bench, d: Direction, workload: str) -> Scenario:
    paths, runner, meter = b.targets(d, workload, True), b.runner(), b.meter(d, bench=False)
    count, warmup = b.count(b.args.requests, 30, 2000), b.count(b.args.warmup, 5, 50)
    await runner.start().interleaved(paths, warmup)
    async with progress(f"latency {workload} {d.name}", count * len(paths)) as bar:
        samples = await runner.start(bar).interleaved(paths, count, meter.measure)
    stats = {name: PathStats.of(s, None) for name, s in samples.items()}
    walls = {name: sum(s.total for s in got) for name, got in samples.items()}
    extra = meter.report(walls, samples) | {"chunk_gap_ms": b.args.chunk_gap_ms}
    return scenario("latency", d, workload, 1, count, warmup, stats, runner, paths, extra)


async def concurrent_abba(runner: Runner, paths: list[Target], conc: int, count: int,
                          warmup: int, label: str, meter: Meter
                          ) -> tuple[dict[str, PathStats], dict[str, Any]]:
    """Warm up each path, then run half the requests in the order A B, the other half B A.
    Returns the statistics and the wall time per path."""
    for path in paths:
        await runner.start().concurrent(path, warmup, conc)
    samples: dict[str, list[Sample]] = {t.name: [] for t in paths}
    walls = dict.fromkeys(samples, 0.0)
    async with progress(label, count * len(paths)) as bar:
        for i, path in enumerate(paths + paths[::-1]):
            half = count // 2 if i < len(paths) else count - count // 2
            with meter.measure(path.name):
                got, wall = await runner.start(bar).concurrent(path, half, conc)
            samples[path.name] += got
            walls[path.name] += wall
    stats = {name: PathStats.of(got, walls[name]) for name, got in samples.items()}
    return stats, meter.report(walls, samples)


async def throughput(b: Bench, d: Direction, workload: str, conc: int) -> Scenario:
    paths, runner, meter = b.targets(d, workload, True), b.runner(), b.meter(d)
    count, warmup = b.count(b.args.requests, 150, 10000), b.warmup(conc)
    label = f"throughput {workload} {d.name} c={conc}"
    stats, extra = await concurrent_abba(runner, paths, conc, count, warmup, label, meter)
    extra["chunk_gap_ms"] = b.args.chunk_gap_ms
    return scenario("throughput", d, workload, conc, count, warmup, stats, runner, paths, extra)


async def non_streaming(b: Bench, d: Direction, workload: str) -> Scenario:
    paths, runner, meter = b.targets(d, workload, False), b.runner(), b.meter(d)
    conc = b.args.nonstream_concurrency
    count, warmup = b.count(b.args.nonstream_requests, 60, 4000), b.warmup(conc)
    label = f"non-streaming {workload} {d.name} c={conc}"
    stats, extra = await concurrent_abba(runner, paths, conc, count, warmup, label, meter)
    return scenario("non-streaming", d, workload, conc, count, warmup, stats, runner, paths,
                    extra)


async def long_streams(b: Bench, d: Direction, workload: str) -> Scenario:
    a, up = b.args, b.upstreams[d.dialect]
    streams = b.count(a.streams, 100, 1000)
    chunks, delay_ms, spread_ms = b.count(a.chunks, 20, 100), a.chunk_delay_ms, a.stream_spread_ms
    base = up.paced(chunks, delay_ms)
    extra: dict[str, Any] = {"paced": up.fake, "chunks": chunks, "delay_ms": delay_ms}
    extra |= {"spread_ms": spread_ms, "batches": 2, "launched": 2 * streams}  # per path
    runs = Batches(b.runner(), d, workload, streams, chunks * delay_ms / 1000, spread_ms / 1000)
    if a.no_proxy:
        paths = b.targets(d, workload, True, base, None, chunks)
        await runs.run(paths, b.meter(d))
    else:
        async with b.fresh_proxy(d, base) as child:
            idle = memory_mb(child.proc.pid)
            paths = b.targets(d, workload, True, base, child.url, chunks)
            await runs.run(paths, b.meter(d, child.proc.pid))
            peak = memory_mb(child.proc.pid)
        if idle is not None and peak is not None:
            extra["proxy_idle_rss_mb"], extra["proxy_peak_rss_mb"] = idle[0], peak[1]
    stats = {name: PathStats.of(got, runs.walls[name]) for name, got in runs.samples.items()}
    deltas = {n: [s.deltas for s in got if s.error is None] for n, got in runs.samples.items()}
    extra["text_deltas"] = {n: [min(ds, default=0), max(ds, default=0)] for n, ds in deltas.items()}
    if runs.meter is not None:
        extra |= runs.meter.report(runs.walls, runs.samples)
    return scenario("long-streams", d, workload, streams, 2 * streams, streams, stats,
                    runs.runner, paths, extra)


@dataclass
class Batches:
    """Long streams: per path a warm-up batch, then measured batches A B B A, keeping the
    samples, the wall times and the CPU time the processes used meanwhile. Every batch
    runs, however many failed before: the connections a burst loses are what is measured,
    and a batch ends by itself (--timeout)."""

    runner: Runner
    d: Direction
    workload: str
    streams: int
    seconds: float  # a stream's length at best, for the progress line
    spread: float  # measured starts are spread over this many seconds (0: all at once)
    samples: dict[str, list[Sample]] = field(default_factory=dict)
    walls: dict[str, float] = field(default_factory=dict)
    meter: Meter | None = None

    async def run(self, paths: list[Target], meter: Meter) -> None:
        runner, n, self.meter = self.runner, self.streams, meter
        ramp = max(self.spread, n / 1000)  # warm-up: a second per thousand starts
        name = f"long-streams {self.workload} {self.d.name}"
        for t in paths:
            async with progress(f"{name} warm-up {t.name}", n, self.seconds + ramp) as bar:
                await runner.start(bar).batch(t, n, ramp)
        for t in paths:
            self.samples[t.name], self.walls[t.name] = [], 0.0
        for i, t in enumerate(paths + paths[::-1]):
            label = f"{name} {t.name} {i + 1}/{2 * len(paths)}"
            async with progress(label, n, self.seconds + self.spread) as bar:
                with meter.measure(t.name):
                    got, wall = await runner.start(bar).batch(t, n, self.spread)
            self.samples[t.name] += got
            self.walls[t.name] += wall

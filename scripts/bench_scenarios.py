"""The benchmark's scenarios; each sends the same work the direct way and through the proxy.

- ``latency``: one request at a time, direct and proxy alternating (A B, B A, ...).
- ``throughput``: C workers share a fixed number of streaming requests, run in halves
  ordered direct, proxy, proxy, direct; req/s is requests / wall time.
- ``non-streaming``: the same at concurrency 32 with ``"stream": false``.
- ``long-streams``: batches of N streams open at once (1000 of 100 chunks 20 ms apart by
  default), their starts spread over one chunk interval (--stream-spread-ms); per path a
  warm-up batch (its starts spread over a second, so every connection gets opened and
  pooled), then measured batches in the order direct, proxy, proxy, direct. Every answer is
  checked whole. The proxy is a fresh process per direction, so its peak resident memory
  (VmHWM, summed over its processes) is this scenario's; the CPU time each process used
  while a path's batches ran is reported too.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from bench_load import CLIENT_PATHS, Progress, Runner, Sample, Target, request_body, request_headers
from bench_procs import Child, cpu_seconds, memory_mb
from bench_report import Direction, PathStats, Scenario
from bench_upstreams import expected_text

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
class Bench:
    args: argparse.Namespace
    session: aiohttp.ClientSession
    upstreams: dict[str, Upstream]  # by dialect
    proxies: dict[str, str]  # proxy base URL by upstream dialect; empty with --no-proxy
    fresh_proxy: FreshProxy  # a new proxy process for one direction, in front of a base URL

    def runner(self) -> Runner:
        a = self.args
        return Runner(self.session, a.timeout, a.max_failures, a.max_seconds)

    def targets(
        self,
        d: Direction,
        stream: bool,
        base: str | None = None,
        proxy: str | None = None,
        chunks: int | None = None,
    ) -> list[Target]:
        """The direct path (the upstream's own dialect), then the proxy path (the client's)."""
        up, a = self.upstreams[d.dialect], self.args
        expect = expected_text(d.dialect, chunks) if up.fake else None
        direct_body = request_body(d.dialect, up.model, stream, a.prompt, a.max_tokens)
        headers = request_headers(d.dialect, up.key)
        out = [Target("direct", up.endpoint(base), direct_body, headers, d.dialect, stream, expect)]
        proxy = proxy or self.proxies.get(d.dialect)
        if proxy and not a.no_proxy:
            body = request_body(d.client, up.model, stream, a.prompt, a.max_tokens)
            headers = request_headers(d.client, "bench")
            url = proxy + CLIENT_PATHS[d.client]
            out.append(Target("proxy", url, body, headers, d.client, stream, expect))
        return out

    def count(self, given: int | None, quick: int, full: int) -> int:
        return given if given is not None else quick if self.args.quick else full

    def warmup(self, conc: int) -> int:
        return self.count(self.args.warmup, 5, 50) * -(-conc // 16)


def progress(label: str, total: int, seconds: float | None = None) -> Progress:
    return Progress(label, total, seconds)


async def latency(b: Bench, d: Direction) -> Scenario:
    paths, runner = b.targets(d, stream=True), b.runner()
    count, warmup = b.count(b.args.requests, 30, 2000), b.count(b.args.warmup, 5, 50)
    await runner.start().interleaved(paths, warmup)
    async with progress(f"latency {d.name}", count * len(paths)) as bar:
        samples = await runner.start(bar).interleaved(paths, count)
    stats = {name: PathStats.of(s, None) for name, s in samples.items()}
    return finish(Scenario("latency", d.name, 1, count, warmup, stats, dict(runner.errors)), d)


async def concurrent_abba(
    runner: Runner, paths: list[Target], conc: int, count: int, warmup: int, label: str
) -> dict[str, PathStats]:
    """Warm up each path, then run half the requests in the order A B, the other half B A."""
    for target in paths:
        await runner.start().concurrent(target, warmup, conc)
    samples: dict[str, list[Sample]] = {t.name: [] for t in paths}
    walls = dict.fromkeys(samples, 0.0)
    async with progress(label, count * len(paths)) as bar:
        for i, target in enumerate(paths + paths[::-1]):
            half = count // 2 if i < len(paths) else count - count // 2
            got, wall = await runner.start(bar).concurrent(target, half, conc)
            samples[target.name] += got
            walls[target.name] += wall
    return {name: PathStats.of(got, walls[name]) for name, got in samples.items()}


async def throughput(b: Bench, d: Direction, conc: int) -> Scenario:
    paths, runner = b.targets(d, stream=True), b.runner()
    count, warmup = b.count(b.args.requests, 150, 10000), b.warmup(conc)
    label = f"throughput {d.name} c={conc}"
    stats = await concurrent_abba(runner, paths, conc, count, warmup, label)
    sc = Scenario("throughput", d.name, conc, count, warmup, stats, dict(runner.errors))
    return finish(sc, d)


async def non_streaming(b: Bench, d: Direction) -> Scenario:
    paths, runner = b.targets(d, stream=False), b.runner()
    conc = b.args.nonstream_concurrency
    count, warmup = b.count(b.args.nonstream_requests, 60, 4000), b.warmup(conc)
    label = f"non-streaming {d.name} c={conc}"
    stats = await concurrent_abba(runner, paths, conc, count, warmup, label)
    sc = Scenario("non-streaming", d.name, conc, count, warmup, stats, dict(runner.errors))
    return finish(sc, d)


async def long_streams(b: Bench, d: Direction) -> Scenario:
    a, up = b.args, b.upstreams[d.dialect]
    streams = b.count(a.streams, 100, 1000)
    chunks, delay_ms = b.count(a.chunks, 20, 100), a.chunk_delay_ms
    spread_ms = delay_ms if a.stream_spread_ms is None else a.stream_spread_ms
    base = up.paced(chunks, delay_ms)
    extra: dict[str, Any] = {"paced": up.fake, "chunks": chunks, "delay_ms": delay_ms}
    extra |= {"spread_ms": spread_ms, "batches": 2, "launched": 2 * streams}  # per path
    procs: dict[str, int | None] = {"bench": None}
    if up.pid is not None:
        procs["upstream"] = up.pid
    runs = Batches(b.runner(), d, streams, chunks * delay_ms / 1000, spread_ms / 1000, procs)
    if a.no_proxy:
        await runs.run(b.targets(d, True, base, None, chunks))
    else:
        async with b.fresh_proxy(d, base) as child:
            procs["proxy"] = child.proc.pid
            idle = memory_mb(child.proc.pid)
            await runs.run(b.targets(d, True, base, child.url, chunks))
            peak = memory_mb(child.proc.pid)
        if idle is not None and peak is not None:
            extra["proxy_idle_rss_mb"], extra["proxy_peak_rss_mb"] = idle[0], peak[1]
    stats = {name: PathStats.of(got, runs.walls[name]) for name, got in runs.samples.items()}
    deltas = {n: [s.deltas for s in got if s.error is None] for n, got in runs.samples.items()}
    extra["text_deltas"] = {n: [min(ds, default=0), max(ds, default=0)] for n, ds in deltas.items()}
    extra["cpu_share"] = {  # of one core, while that path's measured batches ran
        path: {proc: round(cpu / runs.walls[path], 3) for proc, cpu in used.items()}
        for path, used in runs.cpu.items()
        if runs.walls[path]
    }
    errors = dict(runs.runner.errors)
    sc = Scenario("long-streams", d.name, streams, 2 * streams, streams, stats, errors, extra=extra)
    return finish(sc, d)


@dataclass
class Batches:
    """Long streams: per path a warm-up batch, then measured batches A B B A, keeping the
    samples, wall times and the CPU time the processes in `procs` used meanwhile."""

    runner: Runner
    d: Direction
    streams: int
    seconds: float  # a stream's length at best, for the progress line
    spread: float  # measured starts are spread over this many seconds
    procs: dict[str, int | None]  # name: pid (None: this process)
    samples: dict[str, list[Sample]] = field(default_factory=dict)
    walls: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, dict[str, float]] = field(default_factory=dict)

    async def run(self, paths: list[Target]) -> None:
        runner, n = self.runner, self.streams
        ramp = max(self.spread, n / 1000)  # warm-up: a second per thousand starts
        for t in paths:
            label = f"long-streams {self.d.name} warm-up {t.name}"
            async with progress(label, n, self.seconds + ramp) as bar:
                await runner.start(bar).batch(t, n, ramp)
        for t in paths:
            self.samples[t.name], self.walls[t.name], self.cpu[t.name] = [], 0.0, {}
        for i, t in enumerate(paths + paths[::-1]):
            if sum(runner.errors.values()) > runner.max_failures:
                break
            label = f"long-streams {self.d.name} {t.name} {i + 1}/{2 * len(paths)}"
            before = {name: cpu_seconds(pid) for name, pid in self.procs.items()}
            async with progress(label, n, self.seconds + self.spread) as bar:
                got, wall = await runner.start(bar).batch(t, n, self.spread)
            for name, pid in self.procs.items():
                now, then = cpu_seconds(pid), before[name]
                if now is not None and then is not None:
                    used = self.cpu[t.name]
                    used[name] = used.get(name, 0.0) + now - then
            self.samples[t.name] += got
            self.walls[t.name] += wall


def finish(sc: Scenario, d: Direction) -> Scenario:
    sc.evaluate(d)
    return sc

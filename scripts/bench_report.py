"""The benchmark's numbers: statistics per path, the targets, the tables and the summary."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from bench_load import Sample

PCTS = (50, 95, 99)
SCENARIOS = ("latency", "throughput", "long-streams", "non-streaming")


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
THROUGHPUT_AT = 64  # the concurrency the throughput target applies at
LONG_P99_RATIO = 1.3  # long streams: proxy p99 total time at most this times direct's
LONG_RSS_MB = {"claude-code": 150.0, "light": 100.0}  # ... and the proxy's peak RSS at most
NONSTREAM_AT, NONSTREAM_RATIO = 32, 0.15  # non-streaming: rate at least this share of direct's


def percentile(values: Sequence[float], pct: float) -> float:
    """Linear interpolation between closest ranks; `values` sorted; NaN when empty."""
    if not values:
        return math.nan
    rank = (len(values) - 1) * pct / 100
    low = math.floor(rank)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (rank - low)


def pcts(values: list[float]) -> list[float]:
    values.sort()
    return [percentile(values, p) for p in PCTS]


@dataclass
class PathStats:
    ok: int
    failed: int
    ttfb_ms: list[float]  # p50, p95, p99: first body bytes
    total_ms: list[float]
    rps: float
    ttfc_ms: list[float] = field(default_factory=list)  # first text content
    reads: float = math.nan  # body reads per answer, on average
    lost: int = 0  # connections lost before the response head

    @classmethod
    def of(cls, samples: list[Sample], wall: float | None) -> PathStats:
        """`wall` None: sequential requests, so req/s is 1 / mean total time."""
        good = [s for s in samples if s.error is None]
        total = [s.total * 1000 for s in good]
        busy = wall if wall is not None else sum(total) / 1000
        rps = len(good) / busy if busy else math.nan
        reads = sum(s.reads for s in good) / len(good) if good else math.nan
        lost = sum(1 for s in samples if s.error is not None and not s.head)
        return cls(len(good), len(samples) - len(good), pcts([s.ttfb * 1000 for s in good]),
                   pcts(total), rps, pcts([s.ttfc * 1000 for s in good]), reads, lost)


@dataclass
class Check:
    name: str
    value: float
    target: str
    passed: bool
    direct: str = ""  # what the direct path did, as the summary shows it
    proxy: str = ""


@dataclass
class Scenario:
    scenario: str  # one of SCENARIOS
    direction: str
    concurrency: int
    requests: int  # per path
    warmup: int  # per path
    paths: dict[str, PathStats]
    errors: dict[str, int]
    checks: list[Check] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # shapes, memory, CPU, deltas
    workload: str = "claude-code"

    def evaluate(self, d: Direction) -> None:
        if "proxy" not in self.paths:
            return
        direct, proxy, add = self.paths["direct"], self.paths["proxy"], self.checks.append
        if self.scenario == "latency":
            added = proxy.total_ms[0] - direct.total_ms[0]
            ttfc = proxy.ttfc_ms[0] - direct.ttfc_ms[0]
            name = "c=1: proxy-added p50 total (ms)"
            add(Check(name, added, f"<= +{d.max_added_ms:g}", added <= d.max_added_ms,
                      f"p50 {direct.total_ms[0]:.2f} ms",
                      f"p50 {proxy.total_ms[0]:.2f} ms (content {ttfc:+.2f} ms)"))
        elif self.scenario == "throughput" and self.concurrency == THROUGHPUT_AT:
            ratio = proxy.rps / direct.rps
            name = f"c={THROUGHPUT_AT}: req/s, proxy/direct"
            add(Check(name, ratio, f">= {d.min_ratio:g}", ratio >= d.min_ratio,
                      f"{direct.rps:.0f} req/s", f"{proxy.rps:.0f} req/s"))
        elif self.scenario == "non-streaming" and self.concurrency == NONSTREAM_AT:
            ratio = proxy.rps / direct.rps
            name = f"non-streaming c={NONSTREAM_AT}: req/s, proxy/direct"
            add(Check(name, ratio, f">= {NONSTREAM_RATIO:g}", ratio >= NONSTREAM_RATIO,
                      f"{direct.rps:.0f} req/s", f"{proxy.rps:.0f} req/s"))
        elif self.scenario == "long-streams":
            self._evaluate_long(direct, proxy)

    def _evaluate_long(self, direct: PathStats, proxy: PathStats) -> None:
        n, launched, add = self.concurrency, self.extra["launched"], self.checks.append

        def done(p: PathStats) -> str:
            return f"{p.ok}/{launched} complete, {p.lost} lost"

        add(Check(f"{n} at once: streams complete", proxy.ok, f"= {launched}",
                  proxy.ok == launched, done(direct), done(proxy)))
        ratio = proxy.total_ms[2] / direct.total_ms[2]
        ttfc = proxy.ttfc_ms[2] / direct.ttfc_ms[2]
        add(Check(f"{n} at once: p99 total, proxy/direct", ratio, f"<= {LONG_P99_RATIO:g}",
                  ratio <= LONG_P99_RATIO, f"p99 {direct.total_ms[2]:.0f} ms, content "
                  f"{direct.ttfc_ms[2]:.0f} ms", f"p99 {proxy.total_ms[2]:.0f} ms, content "
                  f"{proxy.ttfc_ms[2]:.0f} ms ({ttfc:.2f}x)"))
        peak = self.extra.get("proxy_peak_rss_mb")
        if peak is not None:
            limit = LONG_RSS_MB[self.workload]
            idle = f"idle {self.extra['proxy_idle_rss_mb']:.0f} MB"
            add(Check(f"{n} at once: proxy peak RSS (MB)", peak, f"<= {limit:g}",
                      peak <= limit, "", idle))


# --- tables ---------------------------------------------------------------------------------------


def table_row(label: str, cells: Sequence[str]) -> str:
    return f"{label:<14}" + "".join(f"{c:>9}" for c in cells)


def number(value: float) -> str:
    if not math.isfinite(value):
        return "-"
    return f"{value:.0f}" if value == int(value) and abs(value) >= 10 else f"{value:.3f}"


def verdict(check: Check) -> str:
    return "PASS" if check.passed else "MISS"


def heading(sc: Scenario) -> str:
    x = sc.extra
    if sc.scenario == "latency":
        how = f"{sc.requests} requests per path, alternating, {sc.warmup} warm-up"
    elif sc.scenario == "long-streams":
        shape = f"{x['chunks']} chunks {x['delay_ms']} ms apart" if x["paced"] else "real upstream"
        start = ("all connecting at once" if not x["spread_ms"]
                 else f"starts spread over {x['spread_ms']} ms")
        how = f"{sc.concurrency} concurrent streams ({shape}, {start}), {x['batches']} "
        how += f"batches per path in the order A B B A, {sc.warmup} warm-up"
    else:
        how = f"{sc.requests} requests per path, halves A B B A, {sc.warmup} warm-up"
    if x.get("chunk_gap_ms"):
        how += f", text chunks {x['chunk_gap_ms']} ms apart"
    body = x.get("body_bytes")
    size = f", {body['proxy'] / 1000:.1f} KB requests" if body and "proxy" in body else ""
    return f"== {sc.scenario}, {sc.workload}{size}, {sc.direction}, c={sc.concurrency}: {how}"


COLUMNS = ["ttfb p50", "p99", "content50", "p99", "total p50", "p95", "p99", "req/s", "reads"]


def print_scenario(sc: Scenario) -> None:
    print("\n" + heading(sc))
    print(table_row("path", COLUMNS) + f"{'ok':>7}{'failed':>7}")
    rows = {name: [*st.ttfb_ms[::2], *st.ttfc_ms[::2], *st.total_ms, st.rps, st.reads]
            for name, st in sc.paths.items()}
    for name, st in sc.paths.items():
        cells = [f"{v:.2f}" for v in rows[name][:-2]] + [f"{st.rps:.1f}", f"{st.reads:.1f}"]
        print(table_row(name, cells) + f"{st.ok:>7}{st.failed:>7}")
    if "proxy" in rows:
        pairs = zip(rows["proxy"], rows["direct"], strict=True)
        ratios = [f"{p / d:.2f}x" if d and math.isfinite(p / d) else "-" for p, d in pairs]
        print(table_row("proxy/direct", ratios))
    x = sc.extra
    for path, used in x.get("per_request", {}).items():
        shares = x.get("cpu_share", {}).get(path, {})
        each = [f"{proc} {u['cpu_ms']:.2f} ms CPU ({shares.get(proc, math.nan):.0%} of a core), "
                f"{u['reads']:.0f} reads, {u['writes']:.0f} writes" for proc, u in used.items()]
        print(f"per {path} request: " + "; ".join(each))
    if sc.scenario == "long-streams":
        deltas = ", ".join(f"{k} {lo}-{hi}" for k, (lo, hi) in x["text_deltas"].items())
        print(f"text deltas per complete stream: {deltas}")
        lost = ", ".join(f"{k} {p.lost}" for k, p in sc.paths.items())
        print(f"connections lost before the response head: {lost}")
        if x.get("proxy_peak_rss_mb") is not None:
            idle, peak = x["proxy_idle_rss_mb"], x["proxy_peak_rss_mb"]
            print(f"proxy resident memory: {idle:.1f} MB idle, peak {peak:.1f} MB")
    for check in sc.checks:
        print(f"{check.name}: {number(check.value)}  (target {check.target})  {verdict(check)}")
    for error, n in sc.errors.items():
        print(f"  failed x{n}: {error}")


def print_summary(scenarios: list[Scenario]) -> None:
    """The targets of issue 14 in one table, grouped by workload."""
    rows = [(sc.workload, sc.direction, c) for sc in scenarios for c in sc.checks]
    if not rows:
        return
    print("\n== targets (direct and proxy measured side by side in this run)")
    head = f"{'workload':<12}{'direction':<16}{'target':<40}{'direct':<34}{'proxy':<44}"
    print(head + f"{'value':>9}  {'wanted':<9} verdict")
    for workload, direction, c in rows:
        line = f"{workload:<12}{direction:<16}{c.name:<40}{c.direct:<34}{c.proxy:<44}"
        print(line + f"{number(c.value):>9}  {c.target:<9} {verdict(c)}")
    passed = sum(c.passed for _, _, c in rows)
    print(f"{passed} of {len(rows)} targets met")

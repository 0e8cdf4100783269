"""The benchmark's numbers: statistics per path, the targets, the tables, JSON and a plot."""

from __future__ import annotations

import math
import sys
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
LONG_RSS_MB = 100.0  # ... and the proxy's peak resident memory under this
NONSTREAM_AT, NONSTREAM_RATIO = 32, 0.15  # non-streaming: rate at least this share of direct's


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
    scenario: str  # one of SCENARIOS
    direction: str
    concurrency: int
    requests: int  # per path
    warmup: int  # per path
    paths: dict[str, PathStats]
    errors: dict[str, int]
    checks: list[Check] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # long streams: shape, memory, deltas

    def evaluate(self, d: Direction) -> None:
        if "proxy" not in self.paths:
            return
        direct, proxy, add = self.paths["direct"], self.paths["proxy"], self.checks.append
        if self.scenario == "latency":
            added = proxy.total_ms[0] - direct.total_ms[0]
            name = "proxy-added p50 total (ms), c=1"
            add(Check(name, added, f"<= {d.max_added_ms}", added <= d.max_added_ms))
        elif self.scenario == "throughput" and self.concurrency == THROUGHPUT_AT:
            ratio = proxy.rps / direct.rps
            name = f"throughput ratio (proxy/direct), c={THROUGHPUT_AT}"
            add(Check(name, ratio, f">= {d.min_ratio}", ratio >= d.min_ratio))
        elif self.scenario == "non-streaming" and self.concurrency == NONSTREAM_AT:
            ratio = proxy.rps / direct.rps
            name = f"non-streaming rate ratio, c={NONSTREAM_AT}"
            add(Check(name, ratio, f">= {NONSTREAM_RATIO}", ratio >= NONSTREAM_RATIO))
        elif self.scenario == "long-streams":
            n, launched = self.concurrency, self.extra["launched"]
            done = proxy.ok
            add(Check(f"{n} streams: proxy complete", done, f"= {launched}", done == launched))
            ratio = proxy.total_ms[2] / direct.total_ms[2]
            name = f"{n} streams: p99 total ratio"
            add(Check(name, ratio, f"<= {LONG_P99_RATIO}", ratio <= LONG_P99_RATIO))
            peak = self.extra.get("proxy_peak_rss_mb")
            if peak is not None:
                name = f"{n} streams: proxy peak RSS (MB)"
                add(Check(name, peak, f"< {LONG_RSS_MB:g}", peak < LONG_RSS_MB))


# --- tables ---------------------------------------------------------------------------------------


def table_row(label: str, cells: Sequence[str]) -> str:
    return f"{label:<14}" + "".join(f"{c:>10}" for c in cells)


def number(value: float) -> str:
    return f"{value:.0f}" if value == int(value) and abs(value) >= 10 else f"{value:.3f}"


def verdict(check: Check) -> str:
    return "PASS" if check.passed else "MISS"


def heading(sc: Scenario) -> str:
    x = sc.extra
    if sc.scenario == "latency":
        how = f"{sc.requests} requests per path, alternating, {sc.warmup} warm-up"
    elif sc.scenario == "long-streams":
        shape = f"{x['chunks']} chunks {x['delay_ms']} ms apart" if x["paced"] else "real upstream"
        how = f"{sc.concurrency} concurrent streams ({shape}, starts spread over "
        how += f"{x['spread_ms']} ms), {x['batches']} batches per path in the order A B B A, "
        how += f"{sc.warmup} warm-up"
    else:
        how = f"{sc.requests} requests per path, halves A B B A, {sc.warmup} warm-up"
    return f"== {sc.scenario}, {sc.direction}, concurrency {sc.concurrency}: {how}"


def print_scenario(sc: Scenario) -> None:
    print("\n" + heading(sc))
    print(table_row("path", ["ttfb p50", "p95", "p99", "total p50", "p95", "p99", "req/s"]), end="")
    print(f"{'ok':>7}{'failed':>7}")
    for name, st in sc.paths.items():
        print(table_row(name, [f"{v:.3f}" for v in st.row()[:-1]] + [f"{st.rps:.1f}"]), end="")
        print(f"{st.ok:>7}{st.failed:>7}")
    if "proxy" in sc.paths:
        pairs = zip(sc.paths["proxy"].row(), sc.paths["direct"].row(), strict=True)
        ratios = [f"{p / d:.2f}x" if d and math.isfinite(p / d) else "-" for p, d in pairs]
        print(table_row("proxy/direct", ratios))
    x = sc.extra
    if sc.scenario == "long-streams":
        deltas = ", ".join(f"{k} {lo}-{hi}" for k, (lo, hi) in x["text_deltas"].items())
        print(f"text deltas per complete stream: {deltas}")
        for path, used in x.get("cpu_share", {}).items():
            shares = ", ".join(f"{proc} {share:.0%}" for proc, share in used.items())
            print(f"CPU while {path} batches ran (share of one core): {shares}")
        if x.get("proxy_peak_rss_mb") is not None:
            idle, peak = x["proxy_idle_rss_mb"], x["proxy_peak_rss_mb"]
            print(f"proxy resident memory: {idle:.1f} MB idle, peak {peak:.1f} MB")
    for check in sc.checks:
        print(f"{check.name}: {number(check.value)}  (target {check.target})  {verdict(check)}")
    for error, n in sc.errors.items():
        print(f"  failed x{n}: {error}")


def print_summary(scenarios: list[Scenario]) -> None:
    checks = [(sc.direction, c) for sc in scenarios for c in sc.checks]
    if not checks:
        return
    print("\n== targets")
    for direction, check in checks:
        line = f"{direction:<16}{check.name:<42}{number(check.value):>9}  {check.target:<8}"
        print(f"{line}  {verdict(check)}")
    passed = sum(c.passed for _, c in checks)
    print(f"{passed} of {len(checks)} targets met")


# --- the plot -------------------------------------------------------------------------------------


def plot(path: str, scenarios: list[Scenario], title: str) -> bool:
    """p50 total time per direction, direct beside proxy, whiskers to p99; one panel per
    scenario. False, with a message, when matplotlib is not installed."""
    try:
        import matplotlib  # type: ignore[import-not-found, unused-ignore]

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        print(
            "bench: --plot needs matplotlib, which is not installed "
            "(pip install 'llm-dialect-proxy[plot]' or pip install matplotlib); no plot written",
            file=sys.stderr,
        )
        return False
    panels: dict[tuple[str, int], list[Scenario]] = {}
    for sc in scenarios:
        panels.setdefault((sc.scenario, sc.concurrency), []).append(sc)
    cols = min(2, len(panels)) or 1
    rows = -(-len(panels) // cols) or 1
    fig, axes = plt.subplots(rows, cols, figsize=(6.5 * cols, 4.2 * rows), squeeze=False)
    for ax, ((name, conc), group) in zip(axes.flat, panels.items(), strict=False):
        labels = [sc.direction for sc in group]
        for k, way in enumerate(("direct", "proxy")):
            xs = [i + (k - 0.5) * 0.38 for i in range(len(group))]
            stats = [sc.paths.get(way) for sc in group]
            p50 = [s.total_ms[0] if s else 0.0 for s in stats]
            p99 = [s.total_ms[2] - s.total_ms[0] if s else 0.0 for s in stats]
            ax.bar(xs, p50, 0.38, yerr=[[0.0] * len(p50), p99], capsize=3, label=way)
        for i, sc in enumerate(group):  # the ratio that scenario's target is about
            direct, proxy = sc.paths.get("direct"), sc.paths.get("proxy")
            if direct and proxy and name in ("throughput", "non-streaming"):
                note = f"rate {proxy.rps / direct.rps:.2f}x"
            elif direct and proxy:
                note = f"p99 {proxy.total_ms[2] / direct.total_ms[2]:.2f}x"
            else:
                continue
            top = max(proxy.total_ms[2], direct.total_ms[2])
            ax.annotate(note, (i, top), ha="center", va="bottom", fontsize=8)
        ax.set_xticks(range(len(group)), labels)
        ax.margins(y=0.12)
        ax.set_ylabel("total time, ms (p50, whisker to p99)")
        peak = [sc.extra.get("proxy_peak_rss_mb") for sc in group if name == "long-streams"]
        peaks = "/".join(f"{p:.0f}" for p in peak if p)
        memory = f", proxy peak RSS {peaks} MB" if peaks else ""
        ax.set_title(f"{name}, c={conc}{memory}", fontsize=10)
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True

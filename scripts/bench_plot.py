"""The benchmark's plot: every scenario run, direct beside proxy (needs matplotlib)."""

from __future__ import annotations

import sys

from bench_report import Scenario


def plot(path: str, scenarios: list[Scenario], title: str) -> bool:
    """p50 total time per direction, direct beside proxy, whiskers to p99; one panel per
    scenario, workload and concurrency. False, with a message, when matplotlib is not
    installed."""
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
    panels: dict[tuple[str, str, int], list[Scenario]] = {}
    for sc in scenarios:
        panels.setdefault((sc.scenario, sc.workload, sc.concurrency), []).append(sc)
    cols = min(2, len(panels)) or 1
    rows = -(-len(panels) // cols) or 1
    fig, axes = plt.subplots(rows, cols, figsize=(6.5 * cols, 4.2 * rows), squeeze=False)
    for ax, ((name, workload, conc), group) in zip(axes.flat, panels.items(), strict=False):
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
            elif direct and proxy and name == "latency":
                note = f"+{proxy.total_ms[0] - direct.total_ms[0]:.2f} ms"
            elif direct and proxy:
                note = f"p99 {proxy.total_ms[2] / direct.total_ms[2]:.2f}x"
                note += f", lost {proxy.lost}" if proxy.lost else ""
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
        ax.set_title(f"{name}, {workload}, c={conc}{memory}", fontsize=10)
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True

#!/usr/bin/env python3
"""Benchmark: what the proxy adds to a request, measured against the direct path, on your server.

What it does. Start an upstream, by default a fast built-in fake per dialect (OpenAI and
Anthropic, ``bench_upstreams.py``) or a real one (``--upstream-url``), and the proxy
(``python -m proxy`` from this repository) in front of it, each in its own process, all on
127.0.0.1. Then send the same requests two ways in one run, *direct* (to the upstream
itself) and *proxy*, per direction:

- ``a2o``: direct = an OpenAI body to the OpenAI upstream; proxy = an Anthropic body to the
  OpenAI-dialect proxy's ``/v1/messages`` (translated).
- ``o2a``: direct = an Anthropic body to the Anthropic upstream; proxy = an OpenAI body (with
  ``stream_options.include_usage``) to the Anthropic-dialect proxy's ``/v1/chat/completions``.
- ``relay-openai`` / ``relay-anthropic``: the upstream's own dialect to the proxy (relayed
  byte for byte).

Workloads (``--workload``, default both; see bench_workload.py): ``claude-code``, a
request shaped like Claude Code's (73 KB: a 30 KB system prompt, 20 tools, a tool round-trip)
and its OpenAI twin, and ``light``, a one-word prompt. Against a real upstream only
``light`` runs unless asked: a Claude Code request costs some 18,000 input tokens.

Scenarios (``--scenarios``, default all; see bench_scenarios.py for how each is run):
``latency`` (one request at a time), ``throughput`` (64 at once), ``long-streams`` (1000
streams, their connections all opened at the same instant, each 100 chunks 20 ms apart,
every answer checked whole, connections lost counted, the proxy's peak resident memory
read off /proc) and ``non-streaming`` (32 at once, ``"stream": false``). long-streams and
non-streaming run for a2o only unless ``--long-directions`` or ``--nonstream-directions``
say otherwise (``--quick``: every direction). The built-in fakes send each stream frame as
its own HTTP chunk with one transport write (bench_fake_http.py), so the direct path is
about as fast as this machine allows and every ratio says what the proxy costs.

How to run (from the repository root)::

    .venv/bin/python scripts/bench.py                 # everything, about 10 minutes
    .venv/bin/python scripts/bench.py --quick         # every scenario and direction, scaled down
    .venv/bin/python scripts/bench.py --workload light --scenarios latency,throughput
    .venv/bin/python scripts/bench.py --scenarios long-streams --long-directions a2o,o2a
    .venv/bin/python scripts/bench.py --json out.json --plot out.png   # plot: matplotlib
    .venv/bin/python scripts/bench.py --proxy-arg=--workers=2 --proxy-arg=--state-url=memory://
    .venv/bin/python scripts/bench.py --proxy-root ../old-worktree   # an older proxy, same bench
    .venv/bin/python scripts/bench.py --upstream-url https://api.deepseek.com/v1 \\
        --upstream-dialect openai --upstream-key "$KEY" --model deepseek-chat --quick

Against a real upstream, "direct" calls it with your key, the proxy is started in front of it
(the key reaches it in its environment), only the directions of that dialect run, and answers
are checked for shape, not for their text; long streams are whatever the model sends. Mind
that a full run sends thousands of requests, a thousand of them at once: start with --quick.

What it measures. Per request: time to first byte (first body bytes received), to first
content (the first read holding text), total time (body fully read) and the reads the body
took; per path: p50/p95/p99 of each, requests per second, the ratios proxy/direct, and the
CPU each process used meanwhile. Warm-up requests are not counted. Each warm-up and
measurement stops early after --max-seconds, so even a slow proxy finishes in minutes;
"ok" counts what was measured and checked. A line of progress goes to stderr when it is a
terminal. The machine's load average is printed at the start and the end (and kept in
the JSON): on a shared machine, read the numbers with it.

Targets (issue 14; 2-core machine), per workload, summed up in one table at the end: at
concurrency 1 the proxy adds at most 1 ms to the p50 total time when it translates (a2o,
o2a), 0.5 ms when it relays; at concurrency 64 it serves at least 0.5 (translating) or 0.70
(relaying) of the direct path's requests per second; 1000 streams connecting at once all
complete, with the p99 total time within 1.3 times direct's and the proxy's peak RSS at
most 150 MB (73 KB bodies) or 100 MB (tiny ones); non-streaming at concurrency 32, at least
0.15 of the direct rate. A missed target is reported, not an error: the exit code is 1
only when requests failed, 2 when the benchmark could not start.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import signal
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # imported from elsewhere than `python scripts/bench.py`
    sys.path.insert(0, str(HERE))

from bench_load import Progress  # noqa: E402
from bench_plot import plot  # noqa: E402
from bench_procs import (  # noqa: E402
    REPO,
    Child,
    free_port,
    raise_open_files,
    spawn,
    wait_healthy,
)
from bench_report import (  # noqa: E402
    DIRECTIONS,
    SCENARIOS,
    Direction,
    Scenario,
    print_scenario,
    print_summary,
)
from bench_scenarios import (  # noqa: E402
    Bench,
    Upstream,
    latency,
    long_streams,
    non_streaming,
    throughput,
)
from bench_upstreams import DEFAULT_TEXTS, HOST, MODEL  # noqa: E402
from bench_workload import WORKLOADS  # noqa: E402

DIALECTS = ("openai", "anthropic")


# --- the command line -----------------------------------------------------------------------------


def names(choices: Sequence[str], allow_all: bool = False) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        got = [n.strip() for n in text.split(",") if n.strip()]
        if allow_all and got == ["all"]:
            return list(choices)
        unknown = [n for n in got if n not in choices]
        if unknown or not got:
            raise argparse.ArgumentTypeError(f"choose from {','.join(choices)}, got {text!r}")
        return list(dict.fromkeys(got))

    return parse


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description="Benchmark the proxy against the direct path, on a built-in fake upstream "
        "or a real one.",
    )
    add = ap.add_argument
    every = list(SCENARIOS)
    add("--scenarios", type=names(SCENARIOS, True), default=every, help=f"{','.join(every)} (all)")
    add("--directions", type=names(list(DIRECTIONS), True), help=f"{','.join(DIRECTIONS)} (all)")
    add("--long-directions", type=names(list(DIRECTIONS), True), help="long-streams (a2o)")
    add("--nonstream-directions", type=names(list(DIRECTIONS), True), help="non-streaming (a2o)")
    add("--workload", type=names(WORKLOADS, True), help="claude-code (a 73 KB Claude Code "
        "request), light (a one-word prompt) or all (the default; light alone against "
        "--upstream-url)")
    add("--quick", action="store_true", help="every scenario and direction, scaled down (CI)")
    g = ap.add_argument_group("sizes")
    g.add_argument("--requests", type=int, help="latency/throughput, per path (2000; 10000)")
    g.add_argument("--concurrency", type=lambda s: [int(c) for c in s.split(",")], default=[64],
                   help="throughput concurrencies (64)")  # fmt: skip
    g.add_argument("--warmup", type=int, help="warm-up requests per path (50 per 16 concurrent)")
    g.add_argument("--chunk-gap-ms", type=int, default=0,
                   help="latency/throughput/non-streaming: the fake paces its text chunks this "
                   "many ms apart, so that each arrives in a read of its own (0: as fast as "
                   "it writes)")
    g.add_argument("--streams", type=int, help="long-streams: streams open at once (1000)")
    g.add_argument("--chunks", type=int, help="long-streams: chunks per stream (100)")
    g.add_argument(
        "--chunk-delay-ms", type=int, default=20, help="long-streams: ms between chunks (20)"
    )
    g.add_argument(
        "--stream-spread-ms",
        type=int,
        default=0,
        help="long-streams: ms the starts of a batch spread over (0: all connect at once)",
    )
    g.add_argument(
        "--nonstream-concurrency", type=int, default=32, help="non-streaming: concurrency (32)"
    )
    g.add_argument("--nonstream-requests", type=int, help="non-streaming: requests per path (4000)")
    g.add_argument("--timeout", type=float, default=30.0, help="per request, seconds (30)")
    g.add_argument(
        "--max-failures", type=int, default=20, help="end a run after this many failures (20)"
    )
    g.add_argument("--max-seconds", type=float, default=25.0, help="cap per warm-up or run (25)")
    u = ap.add_argument_group("a real upstream instead of the built-in fake")
    u.add_argument("--upstream-url", help="as the proxy takes it: OpenAI ending in /v1")
    u.add_argument("--upstream-dialect", choices=DIALECTS, default="openai")
    u.add_argument("--upstream-key", default=os.environ.get("UPSTREAM_API_KEY", ""),
                   help="(default: $UPSTREAM_API_KEY)")  # fmt: skip
    u.add_argument("--model", help=f"(default {MODEL!r} for the fake)")
    u.add_argument("--prompt", default="hi", help="the light workload's user message (hi)")
    u.add_argument("--max-tokens", type=int, default=1024, help="the light workload's (1024)")
    u.add_argument("--no-chunk-yield", action="store_true",
                   help="the fake writes a stream's chunks back to back (see bench_fake_http.py)")
    o = ap.add_argument_group("output")
    o.add_argument("--json", metavar="PATH", help="also write the numbers as JSON")
    o.add_argument("--plot", metavar="PATH.png", help="also draw them (needs matplotlib)")
    o.add_argument("--no-progress", action="store_true", help="no progress line on stderr")
    o.add_argument("--no-proxy", action="store_true", help="measure the direct paths only")
    o.add_argument("--proxy-arg", action="append", default=[],
                   help="extra argument, every proxy; repeat it, as --proxy-arg=--workers=2")
    o.add_argument("--proxy-root", type=Path, metavar="DIR",
                   help="run `python -m proxy` from this checkout instead of this one (an "
                   "older commit's worktree, to compare against)")
    args = ap.parse_args(argv)
    return settle(ap, args)


def settle(ap: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.Namespace:
    """Defaults that depend on other arguments; refuse what cannot work."""
    real = args.upstream_url is not None
    dialects = [args.upstream_dialect] if real else list(DIALECTS)
    usable = [n for n, d in DIRECTIONS.items() if d.dialect in dialects]
    if args.directions is None:
        args.directions = usable
    wrong = [n for n in args.directions + (args.long_directions or [])
             + (args.nonstream_directions or []) if n not in usable]  # fmt: skip
    if wrong:
        ap.error(f"a {args.upstream_dialect} upstream serves only {','.join(usable)}, not {wrong}")
    if real and not args.model:
        ap.error("--upstream-url needs --model")
    if real and not args.upstream_key:
        ap.error("--upstream-url needs --upstream-key (or $UPSTREAM_API_KEY)")
    args.model = args.model or MODEL
    if args.workload is None:
        args.workload = ["light"] if real else list(WORKLOADS)
    for name in ("long_directions", "nonstream_directions"):
        if getattr(args, name) is None:
            few = [n for n in args.directions if n == "a2o"] or args.directions[:1]
            setattr(args, name, list(args.directions) if args.quick else few)
    Progress.enabled = Progress.enabled and not args.no_progress
    return args


def plan(args: argparse.Namespace) -> list[tuple[str, list[str]]]:
    """The scenarios to run, each with its directions."""
    per = {"long-streams": args.long_directions, "non-streaming": args.nonstream_directions}
    return [(sc, per.get(sc, args.directions)) for sc in args.scenarios]


# --- the processes --------------------------------------------------------------------------------


def proxy_flags(dialect: str, base: str, port: int, args: argparse.Namespace) -> list[str]:
    flags = ["--host", HOST, "--port", str(port), "--upstream-dialect", dialect]
    flags += ["--upstream", base]
    if dialect == "openai":
        flags += ["--model", args.model]
    elif args.upstream_url is None:
        flags += ["--api-key", "sk-bench"]
    return [*flags, *args.proxy_arg]


def start_proxy(name: str, dialect: str, base: str, args: argparse.Namespace) -> Child:
    port = free_port()
    env = {"UPSTREAM_API_KEY": args.upstream_key} if args.upstream_url else {}
    if args.proxy_root is not None:  # `-m` puts the working directory first on the path
        env["PYTHONPATH"] = str(args.proxy_root)
    argv = ["-m", "proxy", *proxy_flags(dialect, base, port, args)]
    return spawn(name, argv, port, env, cwd=args.proxy_root)


def start_children(args: argparse.Namespace, children: dict[str, Child]) -> dict[str, Upstream]:
    """The upstreams the chosen directions need (fakes unless --upstream-url), and a proxy in
    front of each for the scenarios that share one (long-streams starts its own)."""
    todo = plan(args)
    needed = {DIRECTIONS[n].dialect for _, ns in todo for n in ns}
    shared = {DIRECTIONS[n].dialect for sc, ns in todo if sc != "long-streams" for n in ns}
    upstreams = {}
    for dialect in (d for d in DIALECTS if d in needed):
        if args.upstream_url:
            up = Upstream(dialect, args.upstream_url, args.upstream_key, args.model, fake=False)
        else:
            port, name = free_port(), f"upstream-{dialect}"
            script = str(HERE / "bench_upstreams.py")
            argv = [script, str(port), dialect] + ["--no-chunk-yield"] * args.no_chunk_yield
            child = children[name] = spawn(name, argv, port)
            base = child.url + ("/v1" if dialect == "openai" else "")
            up = Upstream(dialect, base, "bench", args.model, fake=True, pid=child.proc.pid)
        upstreams[dialect] = up
        if not args.no_proxy and dialect in shared:
            gap = args.chunk_gap_ms
            base = up.paced(DEFAULT_TEXTS[dialect], gap) if gap else up.base
            children[f"proxy-{dialect}"] = start_proxy(f"proxy-{dialect}", dialect, base, args)
    return upstreams


# --- orchestration --------------------------------------------------------------------------------


async def bench(
    args: argparse.Namespace, children: dict[str, Child], upstreams: dict[str, Upstream]
) -> list[Scenario]:
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=args.timeout)
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=60)  # thousands at once
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        for child in children.values():
            await wait_healthy(session, child)

        @asynccontextmanager
        async def fresh_proxy(d: Direction, base: str) -> AsyncIterator[Child]:
            child = start_proxy(f"proxy-{d.name}-long", d.dialect, base, args)
            try:
                await wait_healthy(session, child)
                yield child
            finally:
                child.stop()

        proxies = {n[6:]: c for n, c in children.items() if n.startswith("proxy-")}
        b = Bench(args, upstreams, proxies, fresh_proxy)
        scenarios: list[Scenario] = []
        for workload in args.workload:
            for scenario, directions in plan(args):
                for d in (DIRECTIONS[n] for n in directions):
                    if scenario == "latency":
                        runs = [latency(b, d, workload)]
                    elif scenario == "throughput":
                        runs = [throughput(b, d, workload, conc) for conc in args.concurrency]
                    elif scenario == "non-streaming":
                        runs = [non_streaming(b, d, workload)]
                    else:
                        runs = [long_streams(b, d, workload)]
                    for run in runs:
                        scenarios.append(await run)
                        print_scenario(scenarios[-1])
                        sys.stdout.flush()
        return scenarios


def where(args: argparse.Namespace) -> str:
    if args.upstream_url is None:
        return "built-in fake upstreams"
    parts = urlsplit(args.upstream_url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return f"{parts._replace(netloc=host).geturl()} ({args.upstream_dialect})"


def write_json(path: str, args: argparse.Namespace, scenarios: list[Scenario], files: int) -> None:
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(), "open_files": files}
    targets = [
        {"scenario": sc.scenario, "direction": sc.direction, **asdict(c)}
        for sc in scenarios
        for c in sc.checks
    ]
    doc: dict[str, Any] = {
        "machine": machine,
        "upstream": where(args),
        "quick": args.quick,
        "workloads": args.workload,
        "load_average": load_average(),
        "plan": dict(plan(args)),
        "proxy_args": args.proxy_arg,
        "proxy_root": str(args.proxy_root or REPO),
        "scenarios": [asdict(s) for s in scenarios],
        "targets": targets,
    }
    Path(path).write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (Linux), to read the numbers by."""
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except (OSError, ValueError):
        return None


def new_loop() -> asyncio.AbstractEventLoop:
    """uvloop when installed (a dependency on Linux and macOS): a cheaper load generator."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with it ignored
    signal.signal(signal.SIGTERM, lambda *_: signal.raise_signal(signal.SIGINT))  # stop children
    files = raise_open_files()
    children: dict[str, Child] = {}
    try:
        upstreams = start_children(args, children)
        print(f"bench: {where(args)}, {os.cpu_count()} CPUs, ", end="")
        print(f"Python {platform.python_version()}, aiohttp {aiohttp.__version__}, ", end="")
        print(f"open-files limit {files}, load average {load_average()}")
        if args.proxy_root or args.proxy_arg:
            print(f"bench: proxy from {args.proxy_root or REPO}, extra arguments {args.proxy_arg}")
        if args.upstream_url:
            print(f"bench: sending real requests to {where(args)}", file=sys.stderr)
        with asyncio.Runner(loop_factory=new_loop) as runner:
            scenarios = runner.run(bench(args, children, upstreams))
    except RuntimeError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nbench: interrupted", file=sys.stderr)
        return 130
    finally:
        for child in children.values():
            child.stop()
    print_summary(scenarios)
    print(f"bench: load average at the end {load_average()}")
    if args.json:
        write_json(args.json, args, scenarios, files)
    if args.plot and plot(args.plot, scenarios, f"llm-dialect-proxy bench: {where(args)}"):
        print(f"bench: plot written to {args.plot}")
    return 1 if any(sc.errors for sc in scenarios) else 0  # warm-up failures count too


if __name__ == "__main__":
    sys.exit(main())

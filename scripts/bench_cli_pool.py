"""The Claude Code CLI scenarios: time to first token from a warm pool and from a cold
start, and throughput with every pooled process busy and the queue in use.

The proxy runs with ``--upstream-dialect claude-code --pool-size N``, its CLI the fake one
(``tests/fakes/fake-claude``, CLAUDE_CLI) or the real one against the fake Anthropic API
(``--real``). The fake is set by the FAKE_CLAUDE_* variables in the proxy's environment,
which its children inherit: ``reply`` characters of text in deltas of 8 characters,
``delta`` seconds apart, after ``startup`` seconds of start-up work. A request is an
OpenAI streaming chat completion; each answer is checked whole.

- ``warm``: each request waits until /health shows the pool full, then goes.
- ``back-to-back``: pool of 1, each request sent as the previous one ends (its
  replacement was started when the previous request took the process).
- ``cold``: a fresh proxy per request, sent the moment /health first answers (the pool
  still starting: /health's ``ready`` is noted with it).
- ``throughput``: C clients each sending requests back to back (C = N: the pool busy;
  3N: the queue in use); completions per second, time to first token (its excess over
  the warm one is the wait for a process), 503s.
- ``burst``: C requests at the same instant from a full pool, C around 5N (N busy and 4N
  waiting is the pool's bound): how many got 503, with which ``retry-after``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from bench_load import CONTENT, check_stream
from bench_procs import (
    HOST,
    REPO,
    Child,
    free_port,
    load_text,
    spawn,
    stop_tree,
    wait_healthy,
    wait_listening,
)

FAKE_CLI = REPO / "tests" / "fakes" / "fake-claude"
UNIT = "Streaming from a pooled command line process, eight characters a delta. "


def reply_text(chars: int) -> str:
    return (UNIT * (chars // len(UNIT) + 1))[:chars].strip()


def real_cli() -> str | None:
    """The real Claude Code CLI, as the end-to-end tests find it."""
    for path in (os.environ.get("CLAUDE_CODE_BIN"),
                 str(REPO / ".cc" / "node_modules" / ".bin" / "claude"),
                 "/work/main/.cc/node_modules/.bin/claude"):
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


@dataclass
class Setup:
    pool: int
    reply: int  # characters
    delta: float  # seconds between deltas
    startup: float  # the fake's start-up seconds
    real: str | None = None  # the real CLI's path
    anthropic: str = ""  # the fake Anthropic API's base URL, for the real CLI
    home: str = ""

    def env(self) -> dict[str, str]:
        if self.real:
            return {"CLAUDE_CLI": self.real, "HOME": self.home, "ANTHROPIC_API_KEY":
                    "sk-ant-bench", "ANTHROPIC_BASE_URL": self.anthropic,
                    "CLAUDE_CODE_MAX_RETRIES": "0"}
        return {"CLAUDE_CLI": str(FAKE_CLI), "ANTHROPIC_API_KEY": "sk-ant-bench",
                "FAKE_CLAUDE_REPLY": reply_text(self.reply),
                "FAKE_CLAUDE_DELTA_SECONDS": str(self.delta),
                "FAKE_CLAUDE_STARTUP_SECONDS": str(self.startup)}

    @property
    def expect(self) -> str | None:
        return None if self.real else reply_text(self.reply)


def start_proxy(setup: Setup, pool: int | None = None) -> Child:
    port = free_port()
    flags = ["--host", HOST, "--port", str(port), "--upstream-dialect", "claude-code",
             "--pool-size", str(pool or setup.pool)]
    return spawn("proxy-cli", ["-m", "proxy", *flags], port, setup.env())


# --- one request ----------------------------------------------------------------------------------


@dataclass
class Timed:
    status: int
    ttft: float  # seconds to the first read holding text
    total: float
    error: str | None = None
    retry_after: str | None = None
    sent: float = 0.0  # when, from the start of its batch


BODY = orjson.dumps({"model": "sonnet", "stream": True, "messages": [
    {"role": "user", "content": "Tell me about process pools."}]})


async def ask(session: aiohttp.ClientSession, proxy: Child, expect: str | None,
              origin: float | None = None) -> Timed:
    start = time.perf_counter()
    sent = start - origin if origin is not None else 0.0
    url = proxy.url + "/v1/chat/completions"
    try:
        async with session.post(url, data=BODY, headers={
                "content-type": "application/json", "authorization": "Bearer bench"}) as resp:
            if resp.status != 200:
                text = (await resp.read()).decode(errors="replace")[:160]
                return Timed(resp.status, 0.0, time.perf_counter() - start,
                             f"HTTP {resp.status}: {text}", resp.headers.get("retry-after"), sent)
            ttft, body = 0.0, bytearray()
            async for chunk in resp.content.iter_any():
                if not ttft and CONTENT["openai"].search(chunk):
                    ttft = time.perf_counter() - start
                body += chunk
            total = time.perf_counter() - start
    except (aiohttp.ClientError, TimeoutError) as exc:
        return Timed(0, 0.0, time.perf_counter() - start, f"{type(exc).__name__}: {exc}",
                     sent=sent)
    error, _ = check_stream("openai", bytes(body), expect)
    return Timed(200, ttft, total, error, sent=sent)


async def pool_state(session: aiohttp.ClientSession, proxy: Child) -> dict[str, Any]:
    async with session.get(proxy.url + "/health") as resp:
        doc = await resp.json()
    return next(iter((doc.get("backends") or {}).values()), {})


async def wait_full(session: aiohttp.ClientSession, proxy: Child, size: int,
                    seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        state = await pool_state(session, proxy)
        if state.get("ready", 0) >= size and not state.get("starting"):
            return
        await asyncio.sleep(0.02)
    raise RuntimeError(f"the pool did not fill within {seconds:g} s: {state}")


# --- scenarios ------------------------------------------------------------------------------------


def ms(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    values = sorted(v * 1000 for v in values)
    return {"p50": statistics.median(values), "min": values[0], "max": values[-1],
            "p95": values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]}


def summarise(name: str, got: list[Timed], load_before: str, **extra: Any) -> dict[str, Any]:
    good = [t for t in got if t.error is None]
    return {"scenario": name, "ok": len(good), "failed": len(got) - len(good),
            "ttft_ms": ms([t.ttft for t in good]), "total_ms": ms([t.total for t in good]),
            "errors": dict(Counter(t.error for t in got if t.error)),
            "load_before": load_before, "load_after": load_text(), **extra}


async def warm(session: aiohttp.ClientSession, setup: Setup, proxy: Child,
               n: int) -> dict[str, Any]:
    load, got = load_text(), []
    for _ in range(n):
        await wait_full(session, proxy, setup.pool)
        got.append(await ask(session, proxy, setup.expect))
    return summarise("warm", got, load, pool=setup.pool)


async def back_to_back(session: aiohttp.ClientSession, setup: Setup, n: int,
                       children: dict[str, Child]) -> dict[str, Any]:
    proxy = children["proxy-b2b"] = start_proxy(setup, pool=1)
    try:
        await wait_healthy(session, proxy)
        await wait_full(session, proxy, 1)
        load = load_text()
        got = [await ask(session, proxy, setup.expect) for _ in range(n)]
    finally:
        stop_tree(children.pop("proxy-b2b"))
    return summarise("back-to-back", got, load, pool=1)


async def cold(session: aiohttp.ClientSession, setup: Setup, n: int,
               children: dict[str, Child]) -> dict[str, Any]:
    load, got, ready, boot = load_text(), [], [], []
    for _ in range(n):
        spawned = time.perf_counter()
        proxy = children["proxy-cold"] = start_proxy(setup)
        try:
            await wait_listening(proxy)
            await wait_healthy(session, proxy)
            state = await pool_state(session, proxy)
            boot.append(time.perf_counter() - spawned)
            ready.append(state.get("ready", -1))
            got.append(await ask(session, proxy, setup.expect))
        finally:
            stop_tree(children.pop("proxy-cold"))
    return summarise("cold", got, load, pool=setup.pool, ready_when_sent=ready,
                     proxy_start_ms=ms(boot))


async def throughput(session: aiohttp.ClientSession, setup: Setup, proxy: Child,
                     clients: int, each: int) -> dict[str, Any]:
    await wait_full(session, proxy, setup.pool)
    load, got = load_text(), []
    origin = time.perf_counter()

    async def client() -> None:
        for _ in range(each):
            got.append(await ask(session, proxy, setup.expect, origin))

    await asyncio.gather(*(client() for _ in range(clients)))
    wall = time.perf_counter() - origin
    good = sum(1 for t in got if t.error is None)
    return summarise("throughput", got, load, pool=setup.pool, clients=clients,
                     wall_s=wall, completions_per_s=good / wall,
                     statuses=dict(Counter(t.status for t in got)))


async def burst(session: aiohttp.ClientSession, setup: Setup, proxy: Child,
                clients: int) -> dict[str, Any]:
    await wait_full(session, proxy, setup.pool)
    load = load_text()
    origin = time.perf_counter()
    got = await asyncio.gather(*(ask(session, proxy, setup.expect, origin)
                                 for _ in range(clients)))
    busy = [t for t in got if t.status == 503]
    return summarise("burst", list(got), load, pool=setup.pool, clients=clients,
                     statuses=dict(Counter(t.status for t in got)),
                     retry_after=dict(Counter(t.retry_after for t in busy)),
                     refused_after_ms=ms([t.total for t in busy]),
                     wall_s=time.perf_counter() - origin)


# --- the real CLI's upstream ----------------------------------------------------------------------


def serve_anthropic(port: int, pieces: int, delay: float) -> None:
    """The fake Anthropic API (tests/fakes/anthropic_upstream.py) on `port` until SIGTERM,
    every answer a text stream of `pieces` pieces `delay` seconds apart."""
    import signal

    from tests.fakes import anthropic_upstream as fake
    from tests.fakes.anthropic_upstream import FakeAnthropicUpstream, Stream

    text = reply_text(pieces * 8)
    words = [text[i:i + 8] for i in range(0, len(text), 8)]

    async def serve() -> None:
        upstream = FakeAnthropicUpstream(Stream(fake.text_stream(words), delay=delay))
        await upstream.start(HOST, port)
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        await stop.wait()
        await upstream.stop()

    asyncio.run(serve())


def start_anthropic(setup: Setup, children: dict[str, Child]) -> Child:
    port = free_port()
    argv = [str(Path(__file__).resolve().parent / "bench_backends.py"), "--serve-anthropic",
            str(port), "--chunks", str(max(setup.reply // 8, 1)), "--delta", str(setup.delta)]
    child = children["anthropic"] = spawn("anthropic", argv, port)
    setup.anthropic = child.url
    setup.home = tempfile.mkdtemp(prefix="bench-cli-home-")
    return child


# --- all of it ------------------------------------------------------------------------------------


async def run(setup: Setup, quick: bool, children: dict[str, Child],
              requests: int | None = None) -> list[dict[str, Any]]:
    try:
        return await scenarios(setup, quick, children, requests)
    finally:
        if setup.home:
            shutil.rmtree(setup.home, ignore_errors=True)


async def scenarios(setup: Setup, quick: bool, children: dict[str, Child],
                    requests: int | None) -> list[dict[str, Any]]:
    n = requests or (3 if quick else (6 if setup.real else 12))
    timeout = aiohttp.ClientTimeout(total=180)
    results: list[dict[str, Any]] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                     timeout=timeout) as session:
        if setup.real:
            await wait_listening(start_anthropic(setup, children))
        proxy = children["proxy-cli"] = start_proxy(setup)
        await wait_healthy(session, proxy)
        results.append(await warm(session, setup, proxy, n))
        report(results[-1])
        results.append(await cold(session, setup, max(n // 2, 2), children))
        report(results[-1])
        if setup.real:
            return results
        results.append(await back_to_back(session, setup, n, children))
        report(results[-1])
        for clients in (setup.pool, 3 * setup.pool):
            results.append(await throughput(session, setup, proxy, clients, 2 if quick else 5))
            report(results[-1])
        for clients in (5 * setup.pool, 5 * setup.pool + 1, 6 * setup.pool):
            results.append(await burst(session, setup, proxy, clients))
            report(results[-1])
    return results


def report(r: dict[str, Any]) -> None:
    def cells(d: dict[str, float]) -> str:
        return (f"p50 {d['p50']:.0f}, p95 {d['p95']:.0f}, min {d['min']:.0f}, max "
                f"{d['max']:.0f} ms" if d else "-")

    head = f"\n== cli {r['scenario']}: pool {r['pool']}"
    if "clients" in r:
        head += f", {r['clients']} clients"
    print(f"{head} (load {r['load_before']} -> {r['load_after']})")
    print(f"  ok {r['ok']}, failed {r['failed']}; first token {cells(r['ttft_ms'])}; "
          f"total {cells(r['total_ms'])}")
    if "completions_per_s" in r:
        print(f"  {r['completions_per_s']:.2f} completions/s over {r['wall_s']:.1f} s; "
              f"statuses {r['statuses']}")
    if r["scenario"] == "burst":
        print(f"  statuses {r['statuses']}, retry-after {r['retry_after']}, 503s answered "
              f"after {cells(r['refused_after_ms'])}; all done in {r['wall_s']:.1f} s")
    if r["scenario"] == "cold":
        print(f"  pool ready when sent: {r['ready_when_sent']}; proxy start to /health "
              f"{cells(r['proxy_start_ms'])}")
    for error, count in r["errors"].items():
        if r["scenario"] != "burst" or not error.startswith("HTTP 503"):
            print(f"  failed x{count}: {error}")
    sys.stdout.flush()

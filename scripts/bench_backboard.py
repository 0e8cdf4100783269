"""The backboard scenario: one reply through the proxy's backboard backend with the tool-call
sniffer on and off, and what the sniffer costs per chunk.

Over HTTP. The fake backboard (``tests/fakes/backboard_upstream.py``) and the proxy
(``--upstream-dialect backboard``) run in their own processes on 127.0.0.1. Two requests
differ only in their tools: ``sniffer`` carries Claude Code's twenty tools (bench_workload),
so the proxy describes them in the prompt and runs the sniffer over the reply; ``plain``
carries none, so the sniffer has no names and passes every event through. Both ask the
fake's model (``say:``, ``chunk:``, ``delay:`` directives, tests/fakes/backboard_model.py)
for the same text, with no tool call in it, in pieces of ``chunk_chars`` characters,
``delay`` seconds apart. Requests alternate (A B, B A, ...) in ``blocks`` blocks; each
answer is checked whole. Per path: time to the first text and total time (p50, p95), the
proxy's CPU per request; each block's p50 shows the run-to-run noise the difference is
read against.

In-process. The fake's frames (its own ``Wire.frame``), one per read, through the proxy's
read loop (``pipeline.decoded``: SSE framing, the backboard decoder) with no filter, with
the sniffer as a request without tools gets it (no names), and with Claude Code's tool
names; and ``tests/filters/sniffer_cost.py``'s filter-alone figures.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from bench_load import Runner, Sample, Target, check_batch, request_headers, target
from bench_procs import HOST, Child, free_port, load_text, spawn, wait_healthy, wait_listening
from bench_report import PathStats
from bench_scenarios import Meter
from bench_workload import tools

from proxy.backends.pipeline import decoded
from proxy.dialects.anthropic.request_parse import parse_request
from proxy.dialects.backboard.conversation import plan_turn
from proxy.dialects.backboard.media import without_media
from proxy.dialects.backboard.stream_decode import BackboardStreamDecoder
from proxy.filters import EventFilter
from proxy.filters.tool_sniffer import ToolSniffer
from proxy.prompt_tools.describe import describe_tools
from proxy.sse import SSEDecoder
from proxy.tokens import estimate_input_tokens
from tests.fakes.backboard_model import Wire
from tests.filters import sniffer_cost

KEY = "bb-bench-key"
MODEL = "claude-sonnet-4-5"  # in the fake's catalogue: provider anthropic
TEXTS = {  # no tool call in either; "braces" makes the sniffer hold and release text
    "prose": "The quick brown fox jumps over the lazy dog, again and again. ",
    "braces": "A dict {'a': 1} and `code` and a set {1, 2}; nothing to call here. ",
}
TOOL_NAMES = tuple(name for name, _, _ in tools())


@dataclass
class Case:
    text: str  # a key of TEXTS
    delay: float  # seconds between the fake's pieces
    chunks: int
    chunk_chars: int

    @property
    def label(self) -> str:
        return f"{self.text}, {self.chunks} chunks, {self.delay * 1000:g} ms apart"

    def reply(self) -> str:
        """The text the fake will send: whole pieces, no space at either end (the fake
        strips a directive's value)."""
        unit = TEXTS[self.text]
        size = self.chunks * self.chunk_chars
        text = (unit * (size // len(unit) + 1))[:size]
        return text[:-1] + "x" if text[-1] == " " else text

    def prompt(self) -> str:
        return f"chunk: {self.chunk_chars}\ndelay: {self.delay:g}\nsay: {self.reply()}"


def body(case: Case, with_tools: bool) -> bytes:
    doc: dict[str, Any] = {"model": MODEL, "max_tokens": 4096, "stream": True,
                           "messages": [{"role": "user", "content": case.prompt()}]}
    if with_tools:
        doc["tools"] = [{"name": n, "description": d, "input_schema": s} for n, d, s in tools()]
    return orjson.dumps(doc)


def paths(proxy_url: str, case: Case) -> list[Target]:
    url, headers = proxy_url + "/v1/messages", request_headers("anthropic", "bench")
    expect = case.reply()
    return [target(name, url, body(case, name == "sniffer"), headers, "anthropic", True, expect)
            for name in ("sniffer", "plain")]


# --- over HTTP ------------------------------------------------------------------------------------


def start(children: dict[str, Child]) -> tuple[Child, Child]:
    """The fake backboard and the proxy in front of it (not yet listening)."""
    port = free_port()
    argv = ["-m", "tests.fakes.backboard_upstream", "--port", str(port), "--key", KEY]
    fake = children["backboard"] = spawn("backboard", argv, port)
    pport = free_port()
    flags = ["--host", HOST, "--port", str(pport), "--upstream-dialect", "backboard",
             "--upstream", f"http://{HOST}:{port}/api", "--api-key", KEY]
    proxy = children["proxy-backboard"] = spawn("proxy-backboard", ["-m", "proxy", *flags], pport)
    return fake, proxy


async def run_case(runner: Runner, fake: Child, proxy: Child, case: Case, pairs: int,
                   blocks: int, warmup: int) -> dict[str, Any]:
    targets = paths(proxy.url, case)
    for i in range(warmup):
        for t in targets if i % 2 == 0 else targets[::-1]:
            runner.note(check_batch(t, await runner.send(t, keep=True)))
    meter = Meter({"proxy": proxy.proc.pid, "fake": fake.proc.pid})
    got: dict[str, list[list[Sample]]] = {t.name: [] for t in targets}
    load_before = load_text()
    runner.start()
    for _ in range(blocks):
        for name in got:
            got[name].append([])
        for i in range(pairs):
            for t in targets if i % 2 == 0 else targets[::-1]:
                with meter.measure(t.name):
                    sample = await runner.send(t, keep=True)
                got[t.name][-1].append(runner.note(check_batch(t, sample)))
            if runner.exhausted:
                break
    return summary(case, got, meter, load_before)


def p50(samples: Sequence[Sample], field: str) -> float:
    values = [getattr(s, field) * 1000 for s in samples if s.error is None]
    return statistics.median(values) if values else float("nan")


def paired(got: dict[str, list[list[Sample]]], what: str) -> list[float]:
    """The median and quartiles (ms) of sniffer - plain over the pairs sent back to back."""
    diffs = [(getattr(a, what) - getattr(b, what)) * 1000
             for sb, pb in zip(got["sniffer"], got["plain"], strict=True)
             for a, b in zip(sb, pb, strict=False) if a.error is None and b.error is None]
    if len(diffs) < 2:
        return []
    q1, q2, q3 = statistics.quantiles(diffs, n=4)
    return [q2, q1, q3]


def summary(case: Case, got: dict[str, list[list[Sample]]], meter: Meter,
            load_before: str) -> dict[str, Any]:
    flat = {name: [s for block in blocks for s in block] for name, blocks in got.items()}
    counts = {name: len(samples) for name, samples in flat.items()}
    cpu = meter.per_request(counts)
    out: dict[str, Any] = {"case": case.label, "text": case.text, "delay_s": case.delay,
                           "chunks": case.chunks, "chunk_chars": case.chunk_chars,
                           "load_before": load_before, "load_after": load_text(), "paths": {}}
    for name, samples in flat.items():
        stats = PathStats.of(samples, None)
        out["paths"][name] = {
            "ok": stats.ok, "failed": stats.failed, "ttfc_ms": stats.ttfc_ms,
            "total_ms": stats.total_ms, "reads": stats.reads,
            "deltas": sorted({s.deltas for s in samples if s.error is None}),
            "block_ttfc_p50_ms": [p50(b, "ttfc") for b in got[name]],
            "block_total_p50_ms": [p50(b, "total") for b in got[name]],
            "proxy_cpu_ms": cpu.get(name, {}).get("proxy", {}).get("cpu_ms")}
    sniff, plain = out["paths"]["sniffer"], out["paths"]["plain"]
    for what in ("ttfc", "total"):
        out[f"{what}_paired_ms"] = paired(got, what)
        diff = sniff[f"{what}_ms"][0] - plain[f"{what}_ms"][0]
        blocks = sniff[f"block_{what}_p50_ms"] + plain[f"block_{what}_p50_ms"]
        noise = max(max(p[f"block_{what}_p50_ms"]) - min(p[f"block_{what}_p50_ms"])
                    for p in (sniff, plain))
        out[f"{what}_diff_ms"], out[f"{what}_noise_ms"] = diff, noise
        out[f"{what}_within_noise"] = abs(diff) <= noise and len(blocks) > 2
    if sniff["proxy_cpu_ms"] is not None and plain["proxy_cpu_ms"] is not None:
        extra = out["proxy_cpu_extra_ms"] = sniff["proxy_cpu_ms"] - plain["proxy_cpu_ms"]
        out["proxy_cpu_extra_us_per_chunk"] = extra * 1000 / case.chunks
    return out


def print_case(result: dict[str, Any]) -> None:
    print(f"\n== backboard: {result['case']} (load {result['load_before']} -> "
          f"{result['load_after']})")
    print(f"{'path':<9}{'content p50':>12}{'p95':>9}{'total p50':>11}{'p95':>9}"
          f"{'reads':>7}{'deltas':>10}{'proxy CPU':>11}{'ok':>5}{'failed':>7}")
    for name, p in result["paths"].items():
        deltas = "-".join(str(d) for d in (p["deltas"][0], p["deltas"][-1])) if p["deltas"] else "-"
        cpu = f"{p['proxy_cpu_ms']:.2f} ms" if p["proxy_cpu_ms"] is not None else "-"
        print(f"{name:<9}{p['ttfc_ms'][0]:>12.2f}{p['ttfc_ms'][1]:>9.2f}{p['total_ms'][0]:>11.2f}"
              f"{p['total_ms'][1]:>9.2f}{p['reads']:>7.0f}{deltas:>10}{cpu:>11}"
              f"{p['ok']:>5}{p['failed']:>7}")
    for name, p in result["paths"].items():
        blocks = ", ".join(f"{a:.2f}/{b:.2f}" for a, b in
                           zip(p["block_ttfc_p50_ms"], p["block_total_p50_ms"], strict=True))
        print(f"  {name} per block, content/total p50 ms: {blocks}")
    for what, words in (("ttfc", "first text"), ("total", "total time")):
        verdict = "within" if result[f"{what}_within_noise"] else "OUTSIDE"
        pair = result[f"{what}_paired_ms"]
        pair_text = (f"; per pair median {pair[0]:+.2f} ms (quartiles {pair[1]:+.2f}, "
                     f"{pair[2]:+.2f})") if pair else ""
        print(f"  {words}: sniffer - plain = {result[f'{what}_diff_ms']:+.2f} ms (p50s); "
              f"block-to-block spread {result[f'{what}_noise_ms']:.2f} ms: {verdict} the "
              f"noise{pair_text}")
    for name, head in result["head_ms"].items():
        print(f"  {name} timing headers, p50: overhead {head['overhead']:.2f} ms, upstream "
              f"attempt to the first content {head['upstream']:.2f} ms")
    for error, n in result["errors"].items():
        print(f"  failed x{n}: {error}")
    if "proxy_cpu_extra_ms" in result:
        print(f"  proxy CPU per request, sniffer - plain: {result['proxy_cpu_extra_ms']:+.3f} ms "
              f"(the tools' request side included), {result['proxy_cpu_extra_us_per_chunk']:+.2f}"
              f" us per chunk if it were all the sniffer's")


async def head_times(session: aiohttp.ClientSession, proxy: Child, case: Case,
                     pairs: int) -> dict[str, dict[str, float]]:
    """Per path, the medians of the proxy's timing headers: its own time to the response
    head outside the upstream attempt (``overhead``: reading and parsing the request) and
    the attempt up to the first content decoded (``upstream``: the turn planned, the post,
    the fake's answer), both before any event reaches the sniffer."""
    seen: dict[str, dict[str, list[float]]] = {}
    for i in range(pairs):
        for t in paths(proxy.url, case)[:: 1 if i % 2 == 0 else -1]:
            async with session.post(t.url, data=t.body, headers=t.headers) as resp:
                await resp.read()
                got = seen.setdefault(t.name, {"overhead": [], "upstream": []})
                for name in got:
                    got[name].append(float(resp.headers[f"x-llm-proxy-{name}-ms"]))
    return {path: {name: statistics.median(v) for name, v in got.items()}
            for path, got in seen.items()}


async def over_http(cases: list[Case], pairs: int, blocks: int, warmup: int,
                    children: dict[str, Child], max_seconds: float) -> list[dict[str, Any]]:
    fake, proxy = start(children)
    await wait_listening(fake)
    results = []
    async with aiohttp.ClientSession() as session:
        await wait_healthy(session, proxy)
        for case in cases:
            runner = Runner(timeout=60, max_failures=10, seconds=max_seconds)
            results.append(await run_case(runner, fake, proxy, case, pairs, blocks, warmup))
            runner.close()
            results[-1]["errors"] = dict(runner.errors)
            results[-1]["head_ms"] = await head_times(session, proxy, case, max(pairs // 2, 2))
            print_case(results[-1])
    return results


# --- in-process -----------------------------------------------------------------------------------


class Frames:
    """The fake's frames as a byte source, one frame a read."""

    def __init__(self, frames: list[bytes]) -> None:
        self._frames = iter(frames)

    async def read(self) -> bytes:
        return next(self._frames, b"")

    async def finished(self) -> None:
        return None


def fake_frames(text: str, chunk_chars: int) -> list[bytes]:
    """A streamed reply as the fake backboard writes it (run_started, content_streaming
    pieces, run_ended with token counts)."""
    wire = Wire()
    run = {"run_id": "run_0123456789abcdef"}
    frames = [wire.frame({"type": "run_started", **run, "thread_id": "t"})]
    frames += [wire.frame({"type": "content_streaming", "content": text[i:i + chunk_chars]})
               for i in range(0, len(text), chunk_chars)]
    frames.append(wire.frame({"type": "run_ended", "status": "completed", **run,
                              "model_provider": "anthropic", "model_name": MODEL,
                              "memory_operation_id": None, "input_tokens": 40,
                              "output_tokens": len(text.split()),
                              "total_tokens": 40 + len(text.split())}))
    return frames


async def one_pass(frames: list[bytes], filters: Callable[[], Sequence[EventFilter]]) -> float:
    decoder = BackboardStreamDecoder(message_id="msg_bench", model=MODEL, input_tokens=40)

    async def opener(stack: contextlib.AsyncExitStack) -> Frames:
        return Frames(frames)

    start = time.perf_counter()
    async for _ in decoded(opener, SSEDecoder(), decoder, filters(), grace=5.0):
        pass
    return time.perf_counter() - start


FILTERS: dict[str, Callable[[], Sequence[EventFilter]]] = {
    "no filter": lambda: (),
    "sniffer, no tools": lambda: (ToolSniffer(()),),
    "sniffer, 20 tools": lambda: (ToolSniffer(TOOL_NAMES),),
}


async def in_process(chunks: int, chunk_chars: int, repeat: int) -> dict[str, Any]:
    """Microseconds per chunk through the read loop, per text and filter (best of
    ``repeat``); the filter-alone figures of tests/filters/sniffer_cost.py; and what the
    tools cost on the request side (parsed, described in the prompt, the turn planned)."""
    out: dict[str, Any] = {"chunks": chunks, "chunk_chars": chunk_chars, "load": load_text(),
                           "read_loop_us_per_chunk": {}}
    for text in TEXTS:
        case = Case(text, 0.0, chunks, chunk_chars)
        frames = fake_frames(case.reply(), chunk_chars)
        per: dict[str, float] = {}
        for _ in range(repeat):  # the filters' turns interleaved, so drift hits all
            for name, make in FILTERS.items():
                took = await one_pass(frames, make) / len(frames) * 1e6
                per[name] = min(per.get(name, took), took)
        out["read_loop_us_per_chunk"][text] = per
    out["filter_alone_us_per_chunk"] = sniffer_cost.measure(chunks, chunk_chars, repeat)
    case = Case("prose", 0.0, 300, 8)
    out["request_side_us"] = {name: request_side(body(case, name == "sniffer"), 20 * repeat)
                              for name in ("sniffer", "plain")}
    return out


def request_side(raw: bytes, repeat: int) -> float:
    """Microseconds (best of ``repeat``) of what the proxy does with a request before it
    posts to backboard, as edge/messages.py and backends/backboard.py do it."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        parsed = parse_request(orjson.loads(raw))
        estimate_input_tokens(parsed)
        plan_turn(describe_tools(without_media(parsed)))
        best = min(best, time.perf_counter() - start)
    return best * 1e6


def print_in_process(result: dict[str, Any]) -> None:
    print(f"\n== the sniffer in-process: {result['chunks']} chunks of {result['chunk_chars']} "
          f"characters, the fake's frames one a read through the read loop, best of runs "
          f"(load {result['load']})")
    for text, per in result["read_loop_us_per_chunk"].items():
        base = per["no filter"]
        cells = "; ".join(f"{name} {us:.2f} us ({us - base:+.2f})" for name, us in per.items())
        print(f"  {text}: {cells}")
    cells = "; ".join(f"{name} {us:.2f} us" for name, us in
                      result["filter_alone_us_per_chunk"].items())
    print(f"  the filter alone (tests/filters/sniffer_cost.py, added per chunk): {cells}")
    side = result["request_side_us"]
    print(f"  the request before it is posted (parse, estimate, tools in the prompt, turn): "
          f"with the 20 tools {side['sniffer']:.0f} us, without {side['plain']:.0f} us "
          f"({side['sniffer'] - side['plain']:+.0f} us)")

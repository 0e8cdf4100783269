#!/usr/bin/env python3
"""Measure the per-chunk hot path interpreted and compiled with mypyc.

Issue 14, item 4: is compiling the pure core worth an optional build? The hot path of a
translated stream, per upstream read: ``SSEDecoder.frames`` -> ``OpenAIStreamDecoder.feed``
-> ``canonical.coalesce`` -> ``AnthropicStreamEncoder.encode``, fed the benchmark's fake
OpenAI stream (bench_upstreams.openai_stream: a role chunk, 198 text chunks of four words,
the finish, usage and ``[DONE]`` chunks) one chunk per read, or eight.

Each measurement is a fresh child process that imports ``proxy`` from one tree: this
checkout (interpreted), or a scratch copy compiled with mypyc (``--compiled DIR``; built
by ``scripts/build-mypyc --out DIR``). The children alternate, round after round, so the
machine's load falls on both alike. A child reports the median µs per stream over its
repeats for three pipelines: ``frames`` (SSE framing alone), ``decode`` (framing and the
decoder), ``full`` (the whole path to client bytes), and a digest of the client bytes:
both trees must agree to the byte.

    .venv/bin/python scripts/measure_mypyc.py --compiled /tmp/mypyc-tree \\
        [--rounds 4] [--streams 300] [--repeats 7] [--json out.json]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

PER_READ = (1, 8)
PIPELINES = ("frames", "decode", "full")


def reads(per_read: int) -> list[bytes]:
    from bench_upstreams import openai_stream

    head, body, tail = openai_stream()
    frames = head + body + tail
    return [b"".join(frames[at:at + per_read]) for at in range(0, len(frames), per_read)]


def pipeline(name: str) -> Callable[[list[bytes]], list[bytes]]:
    """One stream through the first stages of the path, as the read loop runs them
    (proxy/backends/pipeline.py and proxy/edge/streaming.py)."""
    from proxy.canonical import coalesce
    from proxy.dialects.anthropic.stream_encode import AnthropicStreamEncoder
    from proxy.dialects.openai.stream_decode import OpenAIStreamDecoder
    from proxy.sse import SSEDecoder

    def frames_only(chunks: list[bytes]) -> list[bytes]:
        framing = SSEDecoder()
        out: list[bytes] = []
        for chunk in chunks:
            out += framing.frames(chunk)
        return out

    def stream(chunks: list[bytes], encode: bool) -> list[bytes]:
        framing = SSEDecoder()
        decoder = OpenAIStreamDecoder(message_id="msg_bench", model="fake-model",
                                      input_tokens=8)
        encoder = AnthropicStreamEncoder()
        out: list[bytes] = []
        for chunk in chunks:
            events = decoder.feed(framing.frames(chunk))
            if events and encode:
                out.append(encoder.encode(coalesce(events)))
            if decoder.done:
                return out
        events = decoder.finish(truncated=framing.truncated)
        if events and encode:
            out.append(encoder.encode(coalesce(events)))
        return out

    if name == "frames":
        return frames_only
    return lambda chunks: stream(chunks, name == "full")


def child(streams: int, repeats: int) -> dict[str, Any]:
    """Runs in a child: µs per stream, median of ``repeats``, per pipeline and read size."""
    import proxy.sse

    result: dict[str, Any] = {"compiled": not proxy.sse.__file__.endswith(".py")}
    for per_read in PER_READ:
        chunks = reads(per_read)
        for name in PIPELINES:
            run = pipeline(name)
            for _ in range(max(streams // 10, 5)):  # warm up
                run(chunks)
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                for _ in range(streams):
                    run(chunks)
                times.append((time.perf_counter() - t0) / streams * 1e6)
            result[f"{name}/{per_read}"] = statistics.median(times)
        result[f"digest/{per_read}"] = hashlib.sha256(
            b"".join(pipeline("full")(chunks))).hexdigest()[:16]
    return result


def spawn(tree: Path, streams: int, repeats: int) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run([sys.executable, __file__, "--child", str(streams), str(repeats)],
                         env=env, capture_output=True, timeout=600, check=True, cwd=tree)
    return dict(orjson.loads(out.stdout))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", nargs=2, type=int, help=argparse.SUPPRESS)
    parser.add_argument("--compiled", type=Path, required="--child" not in sys.argv,
                        help="a tree whose proxy/ was compiled (scripts/build-mypyc --out)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--streams", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.child:
        sys.stdout.write(orjson.dumps(child(*args.child)).decode())
        return
    trees = {"interpreted": REPO, "compiled": args.compiled.resolve()}
    rows = []
    for round_ in range(1, args.rounds + 1):
        for label, tree in trees.items():
            row = spawn(tree, args.streams, args.repeats)
            if row["compiled"] != (label == "compiled"):
                raise SystemExit(f"{tree}: proxy.sse is not {label}")
            row |= {"tree": label, "round": round_,
                    "loadavg": Path("/proc/loadavg").read_text().split()[0]}
            rows.append(row)
            cells = "  ".join(f"{k} {row[k]:6.0f}" for k in row if k.count("/") == 1
                              and not k.startswith("digest"))
            print(f"round {round_} {label:<11} {cells}  load {row['loadavg']}", flush=True)
    for per_read in PER_READ:
        if len({r[f"digest/{per_read}"] for r in rows}) != 1:
            raise SystemExit(f"{per_read} per read: the trees wrote different bytes")
    print()
    print(table(rows))
    if args.json:
        args.json.write_bytes(orjson.dumps(rows, option=orjson.OPT_INDENT_2))


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| pipeline | chunks per read | interpreted µs/stream | compiled µs/stream | "
             "compiled saves |", "|---|---|---|---|---|"]
    for per_read in PER_READ:
        for name in PIPELINES:
            key = f"{name}/{per_read}"
            plain = statistics.median(r[key] for r in rows if r["tree"] == "interpreted")
            built = statistics.median(r[key] for r in rows if r["tree"] == "compiled")
            lines.append(f"| {name} | {per_read} | {plain:.0f} | {built:.0f} | "
                         f"{(1 - built / plain) * 100:.0f}% |")
    loads = ", ".join(r["loadavg"] for r in rows)
    return "\n".join([*lines, "", f"medians over rounds; loadavg after each child: {loads}"])


if __name__ == "__main__":
    main()

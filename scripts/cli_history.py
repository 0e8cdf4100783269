#!/usr/bin/env python3
"""Measure how a conversation's history reaches the model through the Claude Code CLI:
flattened into one turn of a fresh pooled CLI (what the proxy does) against a CLI session
kept on disk and resumed (``--session-id``, then ``--resume``), with the REAL CLI talking
to a local fake Anthropic API, offline.

Modes (``--modes``, default all four):

* ``flattened``: the proxy in-process (``upstream_dialect="claude-code"``, a warm pool),
  driven by the openai SDK as a client would, the whole growing conversation each turn.
  Between turns the script waits until the pool is full again, as a person's think time
  would let it (the wait is not counted);
* ``resumed``: the CLI directly, one process per turn (that is how ``--resume`` works, so
  nothing can be started ahead), with the proxy's flags where they apply;
* ``kept`` (for comparison): one CLI process per conversation kept open, one stdin line a
  turn; neither survives a proxy restart nor is shared by workers;
* ``marked``: the flattened turn with its transcript one text block per earlier turn and a
  cache breakpoint on the last, sent by this script to a fresh CLI made ready first, as
  the pool does. The proxy adopted it after this measurement (``transcript.user_content``
  now renders it), so ``flattened`` and ``marked`` now send the same content; the
  README's table was measured before, with the old one-block transcript as
  ``flattened``.

Per turn: time to first token and to the last token (from sending the turn), the requests
the CLI sent to the fake (their count, the last one's bytes, messages, content blocks,
cache breakpoints) and what prompt caching could reuse on the real API: the longest
prefix of this request, up to one of the previous request's cache breakpoints, that is
identical to the previous request, in tokens-ish (characters / 4). The billing line
(system[0], ``cc_version=….XYZ`` whose suffix comes from the session's first prompt) is
counted both ways: ignored, and as sent. What it cannot show: a real model's time to
first token grows with the uncached part of the prompt, the fake answers at once; and the
real API caches nothing below a minimum prefix (about 1024 tokens for Sonnet).

Run from the repository root (bounded by --max-seconds; loopback only; every process it
starts is stopped)::

    .venv/bin/python scripts/cli_history.py [--cli PATH] [--turns 20] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
for _path in (REPO, HERE):  # the proxy and the fakes; the report next to this script
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import openai  # noqa: E402
from aiohttp import ClientSession, web  # noqa: E402
from cli_history_report import Turn, describe, summary, table  # noqa: E402
from cli_history_talk import ANSWERS, SYSTEM, USER_TURNS  # noqa: E402

from proxy.app import create_app, server_options  # noqa: E402
from proxy.canonical import Message, TextPart  # noqa: E402
from proxy.config import Settings  # noqa: E402
from proxy.dialects.claude_code import control  # noqa: E402
from proxy.dialects.claude_code.request_render import cli_arguments, cli_environment  # noqa: E402
from proxy.dialects.claude_code.transcript import user_content  # noqa: E402
from tests.fakes.anthropic_upstream import FakeAnthropicUpstream, text_stream  # noqa: E402
from tests.fakes.openai_upstream import Stream  # noqa: E402

CLI = REPO / ".cc" / "node_modules" / ".bin" / "claude"
MODEL = "sonnet"
TURN_TIMEOUT = 90.0
TURN_START = re.compile(r"(?=^<(?:user|assistant|system)>\n)", re.MULTILINE)


# --- the world one mode runs in -------------------------------------------------------------


@dataclass
class World:
    fake: FakeAnthropicUpstream
    home: Path
    previous: dict[str, Any] | None = None  # the last request the CLI sent
    turns: list[Turn] = field(default_factory=list)

    def finish(self, turn: Turn, mark: int, t0: float) -> None:
        """Record what the turn caused at the fake and under HOME."""
        turn.done_s = turn.done_s or round(time.monotonic() - t0, 3)
        sent = [r for r in self.fake.requests[mark:] if r["path"] == "/v1/messages"]
        turn.requests = len(sent)
        if sent:
            describe(turn, sent[-1]["body"], self.previous)
            self.previous = sent[-1]["body"]
        projects = self.home / ".claude" / "projects"
        turn.session_bytes = sum(p.stat().st_size for p in projects.rglob("*") if p.is_file())
        self.turns.append(turn)


def offline_environment(home: Path, base_url: str) -> dict[str, str]:
    """This process's environment without any real credentials or settings, pointed at
    the fake (claude-code.md, "How to run the real Claude Code CLI … offline")."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ANTHROPIC_", "CLAUDE_", "CLAUDECODE"))
           and not k.lower().endswith("_proxy")}  # loopback only, never through a proxy
    env.update(HOME=str(home), ANTHROPIC_BASE_URL=base_url, ANTHROPIC_API_KEY="sk-ant-test",
               CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1", DISABLE_TELEMETRY="1",
               DISABLE_AUTOUPDATER="1", DISABLE_ERROR_REPORTING="1",
               CLAUDE_CODE_MAX_RETRIES="0")
    return env


@contextlib.asynccontextmanager
async def world(turns: int) -> AsyncIterator[World]:
    """A fake answering ``ANSWERS`` in turn, a throwaway HOME, and ``os.environ`` pointed
    at them (the proxy's pooled children inherit it); all undone afterwards."""
    fake = FakeAnthropicUpstream([Stream(text_stream(a), delay=0.01) for a in ANSWERS[:turns]])
    home = Path(tempfile.mkdtemp(prefix="cli-history-"))
    (home / "work").mkdir()
    saved = dict(os.environ)
    try:
        base = await fake.start()
        os.environ.clear()
        os.environ.update(offline_environment(home, base))
        yield World(fake, home)
    finally:
        os.environ.clear()
        os.environ.update(saved)
        await fake.stop()
        shutil.rmtree(home, ignore_errors=True)


def home_files(home: Path) -> dict[str, int]:
    return {str(p.relative_to(home)): p.stat().st_size for p in sorted(home.rglob("*"))
            if p.is_file()}


# --- (a) flattened, through the proxy -----------------------------------------------------


async def pool_full(session: ClientSession, url: str, size: int) -> None:
    """Wait (at most TURN_TIMEOUT) until the proxy's CLI pool has ``size`` ready."""
    async with asyncio.timeout(TURN_TIMEOUT):
        while True:
            async with session.get(url + "/health") as response:
                backends = (await response.json()).get("backends", {})
            if backends and all(b.get("ready", 0) >= size for b in backends.values()):
                return
            await asyncio.sleep(0.05)


async def run_flattened(w: World, cli: str, turns: int, pool_size: int) -> None:
    settings = Settings(upstream_dialect="claude-code", claude_cli=cli, pool_size=pool_size)
    runner = web.AppRunner(create_app(settings), shutdown_timeout=1.0, **server_options())
    await runner.setup()
    client = openai.AsyncOpenAI(base_url="http://127.0.0.1:1/v1", api_key="x", max_retries=0,
                                timeout=TURN_TIMEOUT)
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        client = client.with_options(base_url=url + "/v1")
        history: list[Any] = [{"role": "system", "content": SYSTEM}]
        async with ClientSession() as session:
            for n in range(turns):
                await pool_full(session, url, pool_size)
                history.append({"role": "user", "content": USER_TURNS[n]})
                turn, mark, t0 = Turn("flattened", n + 1), len(w.fake.requests), time.monotonic()
                async with asyncio.timeout(TURN_TIMEOUT):
                    stream = await client.chat.completions.create(
                        model=MODEL, messages=history, stream=True)
                    async for chunk in stream:
                        if chunk.choices and chunk.choices[0].delta.content:
                            _token(turn, t0, chunk.choices[0].delta.content)
                history.append({"role": "assistant", "content": turn.answer})
                w.finish(turn, mark, t0)
    finally:
        await client.close()
        await runner.cleanup()  # stops the pool: every child


def _token(turn: Turn, t0: float, text: str) -> None:
    now = round(time.monotonic() - t0, 3)
    turn.ttft_s = now if turn.ttft_s is None else turn.ttft_s
    turn.last_token_s = now
    turn.answer += text


# --- (b) resumed and (c) kept: the CLI directly --------------------------------------------


def session_arguments(*, persist: bool) -> list[str]:
    """The proxy's flags (``cli_arguments``), with the system prompt on the command line
    and, when ``persist``, session files written."""
    args = cli_arguments(model=MODEL)
    if persist:
        args.remove("--no-session-persistence")
    args[args.index("--system-prompt") + 1] = SYSTEM
    return args


@contextlib.asynccontextmanager
async def cli_process(command: Sequence[str], cwd: Path
                      ) -> AsyncIterator[asyncio.subprocess.Process]:
    """A CLI in its own process group (dying with us, where setpriv exists), stopped on
    leaving however the block ends."""
    guard = ["setpriv", "--pdeathsig", "KILL", "--"] if shutil.which("setpriv") else []
    proc = await asyncio.create_subprocess_exec(
        *guard, *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL, env=cli_environment(os.environ), cwd=cwd,
        start_new_session=True, limit=1 << 24)
    try:
        yield proc
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 3.0)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()


async def read_turn(proc: asyncio.subprocess.Process, turn: Turn, t0: float) -> None:
    """Read stream-json lines until the turn's ``result``, timing its text deltas."""
    assert proc.stdout is not None
    async with asyncio.timeout(TURN_TIMEOUT):
        while line := await proc.stdout.readline():
            event = json.loads(line)
            if event.get("type") == "result":
                turn.done_s = round(time.monotonic() - t0, 3)
                return
            delta = (event.get("event") or {}).get("delta") or {}
            if event.get("type") == "stream_event" and delta.get("type") == "text_delta":
                _token(turn, t0, delta["text"])
    raise RuntimeError(f"the CLI ended without a result (exit {await proc.wait()})")


def _user_line(n: int) -> bytes:
    return control.user_message([{"type": "text", "text": USER_TURNS[n]}])


async def run_resumed(w: World, cli: str, turns: int, pool_size: int) -> None:
    session = str(uuid.uuid4())
    for n in range(turns):
        flag = ["--session-id", session] if n == 0 else ["--resume", session]
        turn, mark, t0 = Turn("resumed", n + 1), len(w.fake.requests), time.monotonic()
        async with cli_process([cli, *session_arguments(persist=True), *flag],
                               w.home / "work") as proc:
            assert proc.stdin is not None
            proc.stdin.write(_user_line(n))
            proc.stdin.close()
            await read_turn(proc, turn, t0)
            await asyncio.wait_for(proc.wait(), TURN_TIMEOUT)  # the session file written
            turn.done_s = round(time.monotonic() - t0, 3)
        w.finish(turn, mark, t0)


async def run_kept(w: World, cli: str, turns: int, pool_size: int) -> None:
    async with cli_process([cli, *session_arguments(persist=False)], w.home / "work") as proc:
        assert proc.stdin is not None
        for n in range(turns):
            turn, mark, t0 = Turn("kept", n + 1), len(w.fake.requests), time.monotonic()
            proc.stdin.write(_user_line(n))
            await proc.stdin.drain()
            await read_turn(proc, turn, t0)
            w.finish(turn, mark, t0)
        proc.stdin.close()
        await asyncio.wait_for(proc.wait(), TURN_TIMEOUT)


# --- (d) flattened with a cache breakpoint: what the proxy could send instead ------------


def marked_content(history: Sequence[Message]) -> list[dict[str, Any]]:
    """The flattened turn with one block per earlier turn and a cache breakpoint on the
    last: what ``transcript.user_content`` renders since the proxy adopted it."""
    return user_content(history)


async def ready(proc: asyncio.subprocess.Process) -> None:
    """The pool's readiness probe: the CLI has done its start-up work."""
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(control.PROBE)
    async with asyncio.timeout(TURN_TIMEOUT):
        while line := await proc.stdout.readline():
            if control.answer_to(json.loads(line), control.PROBE_ID) is not None:
                return
    raise RuntimeError(f"the CLI ended before it was ready (exit {await proc.wait()})")


async def run_marked(w: World, cli: str, turns: int, pool_size: int) -> None:
    """Each turn a fresh CLI with the proxy's flags, made ready before the turn (as the
    warm pool does), then given what the proxy sends: initialize, set_model, the turn."""
    history: list[Message] = []
    for n in range(turns):
        history.append(Message("user", (TextPart(USER_TURNS[n]),)))
        async with cli_process([cli, *cli_arguments()], w.home / "work") as proc:
            assert proc.stdin is not None
            await ready(proc)
            turn, mark, t0 = Turn("marked", n + 1), len(w.fake.requests), time.monotonic()
            proc.stdin.write(control.initialize([SYSTEM]) + control.set_model(MODEL)
                             + control.user_message(marked_content(history)))
            await read_turn(proc, turn, t0)
        history.append(Message("assistant", (TextPart(turn.answer),)))
        w.finish(turn, mark, t0)


Runner = Callable[[World, str, int, int], Any]
MODES: dict[str, Runner] = {"flattened": run_flattened, "resumed": run_resumed,
                            "kept": run_kept, "marked": run_marked}


# --- the run -----------------------------------------------------------------------------


def loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().strip()
    except OSError:
        return "unknown"


def check_answers(turns: Sequence[Turn]) -> list[str]:
    """Turns whose answer is not the fake's scripted one (an extra request shifts them)."""
    return [f"{t.mode} turn {t.turn}: answer {t.answer!r}" for t in turns
            if t.answer != "".join(ANSWERS[t.turn - 1])]


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {"cli": args.cli, "turns": args.turns,
                              "pool_size": args.pool_size, "loadavg_before": loadavg(),
                              "modes": {}}
    async with asyncio.timeout(args.max_seconds):
        for mode in args.modes.split(","):
            async with world(args.turns) as w:
                await MODES[mode](w, args.cli, args.turns, args.pool_size)
                report["modes"][mode] = {
                    "summary": summary(w.turns), "turns": [asdict(t) for t in w.turns],
                    "home_files": home_files(w.home), "last_request": w.previous,
                    "wrong_answers": check_answers(w.turns)}
            print(f"\n## {mode}\n\n{table(w.turns)}\n", flush=True)
    report["loadavg_after"] = loadavg()
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cli", default=os.environ.get("CLAUDE_CLI") or (
        str(CLI) if CLI.exists() else shutil.which("claude") or str(CLI)))
    parser.add_argument("--turns", type=int, default=len(USER_TURNS),
                        choices=range(1, len(USER_TURNS) + 1), metavar="N")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--pool-size", type=int, default=1)
    parser.add_argument("--max-seconds", type=float, default=900.0)
    parser.add_argument("--json", help="write every figure to this file")
    args = parser.parse_args(argv)
    if unknown := set(args.modes.split(",")) - set(MODES):
        parser.error(f"unknown modes: {', '.join(sorted(unknown))}")
    if not (os.path.isfile(args.cli) and os.access(args.cli, os.X_OK)):
        parser.error(f"no Claude Code CLI at {args.cli} (npm install --no-save --prefix .cc "
                     "@anthropic-ai/claude-code@2.1.330)")
    print(f"loadavg {loadavg()}; {args.turns} turns; CLI {args.cli}", flush=True)
    report = asyncio.run(measure(args))
    for mode, result in report["modes"].items():
        print(f"{mode}: {json.dumps(result['summary'])}")
        print(f"  files left in HOME: {json.dumps(result['home_files'])}")
        for wrong in result["wrong_answers"]:
            print(f"  WRONG {wrong}")
    print(f"loadavg after {report['loadavg_after']}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The real Claude Code CLI, driven through the proxy to the fake OpenAI upstream, offline.

Claude Code (``claude -p … --output-format stream-json``) talks Anthropic Messages to the
proxy on 127.0.0.1; the proxy talks OpenAI chat completions to ``FakeOpenAIUpstream``.
The CLI runs with a throwaway HOME and a minimal environment, so no real config,
credentials or network are touched (claude-code.md, "How to run the real Claude Code CLI").

The binary is looked up in ``$CLAUDE_CODE_BIN``, then ``.cc/`` at the repository root
(``npm install --no-save --prefix .cc @anthropic-ai/claude-code@2.1.330``), then ``PATH``,
then the copy bundled with the ``claude-agent-sdk`` wheel (the ``claude_bin`` fixture in
``conftest.py``). Without one the tests skip, unless ``CI`` is set: then they fail, since CI
must install it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from proxy.app import create_app, server_options
from proxy.config import Settings
from tests.fakes.openai_upstream import (
    FakeOpenAIUpstream,
    Scenario,
    Stream,
    text_stream,
    tool_calls_stream,
)

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 90.0  # seconds for one CLI run
BILLING = "x-anthropic-billing-header"


@dataclass
class Run:
    returncode: int
    lines: list[dict[str, Any]]  # stream-json stdout, one object a line
    stderr: str

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line.get("type") == kind]

    @property
    def result(self) -> dict[str, Any]:
        results = self.of_type("result")
        assert len(results) == 1, f"expected one result line: {self.lines}\n{self.stderr}"
        return results[0]


@contextlib.asynccontextmanager
async def serve(scenario: Scenario | list[Scenario]) -> AsyncIterator[
        tuple[FakeOpenAIUpstream, str]]:
    """The fake upstream and the proxy in front of it; yields (upstream, proxy origin)."""
    upstream = FakeOpenAIUpstream(scenario)
    base = await upstream.start()
    settings = Settings(upstream_url=base, model="gpt-4o-mini", port=0)
    runner = web.AppRunner(create_app(settings), shutdown_timeout=1.0, **server_options())
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        host, port = runner.addresses[0][:2]
        yield upstream, f"http://{host}:{port}"
    finally:
        await runner.cleanup()
        await upstream.stop()


async def run_claude(claude: str, origin: str, home: Path, prompt: str,
                     *extra: str) -> Run:
    """``claude -p PROMPT --output-format stream-json --verbose EXTRA…`` in a clean env."""
    home.mkdir(parents=True, exist_ok=True)
    workdir = home / "work"
    workdir.mkdir(exist_ok=True)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
           "ANTHROPIC_BASE_URL": origin, "ANTHROPIC_API_KEY": "sk-test",
           "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_TELEMETRY": "1",
           "DISABLE_AUTOUPDATER": "1", "DISABLE_ERROR_REPORTING": "1",
           "CLAUDE_CODE_MAX_RETRIES": "1"}
    proc = await asyncio.create_subprocess_exec(
        claude, "-p", prompt, "--output-format", "stream-json", "--verbose",
        "--debug-file", str(home / "debug.log"), *extra,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env, cwd=workdir, start_new_session=True)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    except (TimeoutError, asyncio.CancelledError):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # its own group: the CLI and its tool shells
        await proc.wait()
        raise
    lines = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
    return Run(proc.returncode if proc.returncode is not None else -1, lines, err.decode())


def _explain(run: Run, upstream: FakeOpenAIUpstream, home: Path) -> str:
    debug = home / "debug.log"
    tail = debug.read_text(errors="replace")[-4000:] if debug.exists() else "(no debug log)"
    return (f"rc={run.returncode}\nstdout={json.dumps(run.lines)[:4000]}\nstderr={run.stderr}"
            f"\nupstream requests={len(upstream.requests)}\ndebug log tail:\n{tail}")


def _assert_openai_shaped(body: dict[str, Any]) -> None:
    raw = json.dumps(body)
    assert body["stream"] is True
    assert body["messages"][0]["role"] == "system"
    assert any(m["role"] == "user" for m in body["messages"])
    assert body["tools"] and all(t["type"] == "function" and t["function"]["name"]
                                 for t in body["tools"])
    assert "cache_control" not in raw
    assert BILLING not in raw
    for key in ("system", "thinking", "context_management", "metadata", "output_config"):
        assert key not in body, key


@pytest.mark.parametrize("partial", [False, True], ids=["blocks", "partial-messages"])
async def test_text_answer(claude_bin: str, tmp_path: Path, partial: bool) -> None:
    """One streamed text answer: one upstream call (no non-streaming fallback)."""
    pieces = ["Hello ", "from ", "the ", "proxy."]
    extra = ("--include-partial-messages",) if partial else ()
    async with serve(Stream(text_stream(pieces), delay=0.02)) as (upstream, origin):  # one read each
        run = await run_claude(claude_bin, origin, tmp_path, "say hi", *extra)
        why = _explain(run, upstream, tmp_path)
        assert run.returncode == 0, why
        assert run.result["is_error"] is False, why
        assert run.result["result"] == "Hello from the proxy.", why
        assert len(upstream.requests) == 1, why
    body = upstream.requests[0]["body"]
    assert upstream.requests[0]["path"] == "/v1/chat/completions"
    _assert_openai_shaped(body)
    assert body["model"] == "gpt-4o-mini"
    assert "say hi" in json.dumps(body["messages"])
    if partial:
        deltas = [line["event"]["delta"]["text"] for line in run.of_type("stream_event")
                  if line["event"]["type"] == "content_block_delta"
                  and line["event"]["delta"]["type"] == "text_delta"]
        assert "".join(deltas) == "Hello from the proxy."
        assert len(deltas) > 1, "text should arrive in several deltas"


async def test_bash_tool_round_trip(claude_bin: str, tmp_path: Path) -> None:
    """The model calls Bash; the CLI runs it and sends the output back as a tool message."""
    call_id = "call_e2e_bash_1"
    fragments = ['{"comm', 'and": "echo hel', 'lo-from-proxy", ', '"description": ', '"print"}']
    scenario: list[Scenario] = [
        Stream(tool_calls_stream([(call_id, "Bash", fragments)])),
        Stream(text_stream(["Do", "ne."])),
    ]
    async with serve(scenario) as (upstream, origin):
        run = await run_claude(claude_bin, origin, tmp_path, "run echo hello-from-proxy")
        why = _explain(run, upstream, tmp_path)
        assert run.returncode == 0, why
        assert run.result["is_error"] is False, why
        assert run.result["result"] == "Done.", why
        assert len(upstream.requests) == 2, why

    tool_uses = [block for line in run.of_type("assistant")
                 for block in line["message"]["content"] if block["type"] == "tool_use"]
    assert [(t["name"], t["input"]["command"]) for t in tool_uses] == [
        ("Bash", "echo hello-from-proxy")]

    second = upstream.requests[1]["body"]
    _assert_openai_shaped(second)
    messages = second["messages"]
    assistant = next(m for m in messages if m["role"] == "assistant" and m.get("tool_calls"))
    call = assistant["tool_calls"][0]
    assert call["id"] == call_id and call["function"]["name"] == "Bash"
    assert json.loads(call["function"]["arguments"])["command"] == "echo hello-from-proxy"
    tool_msgs = [m for m in messages if m["role"] == "tool"]
    assert len(tool_msgs) == 1
    assert tool_msgs[0]["tool_call_id"] == call_id
    assert "hello-from-proxy" in json.dumps(tool_msgs[0]["content"])
    assert messages.index(tool_msgs[0]) == messages.index(assistant) + 1

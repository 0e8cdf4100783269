"""The real Claude Code CLI as a client of the backboard backend, offline: the proxy in
front of the fake backboard (tests/fakes/backboard_upstream.py). Claude Code's ~20 tools
are described in the prompt; the model's JSON call is sniffed out of its text and comes
back to the CLI as a tool_use, which it runs; the result goes back to the same thread."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from proxy.app import create_app, server_options
from proxy.config import Settings
from tests.e2e.test_claude_code_cli import run_claude
from tests.fakes.backboard_model import Reply
from tests.fakes.backboard_upstream import DEFAULT_KEY, FakeBackboard


@contextlib.asynccontextmanager
async def serve(fake: FakeBackboard) -> AsyncIterator[str]:
    base = await fake.start()
    settings = Settings(upstream_url=base, upstream_dialect="backboard",
                        upstream_api_key=DEFAULT_KEY, port=0, thread_pool_size=1,
                        model="claude-sonnet-4-6")
    runner = web.AppRunner(create_app(settings), shutdown_timeout=1.0, **server_options())
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()
        await fake.stop()


async def test_claude_code_runs_a_tool_the_model_wrote_as_text(claude_bin: str,
                                                               tmp_path: Path) -> None:
    fake = FakeBackboard()
    fake.script(
        Reply('I will run it. {"tool": "Bash", "args": {"command": "echo hello-from-bb", '
              '"description": "print"}}', chunk_size=7),
        Reply("Done: hello-from-bb.", chunk_size=5))
    async with serve(fake) as origin:
        run = await run_claude(claude_bin, origin, tmp_path, "run echo hello-from-bb",
                               "--include-partial-messages")
    why = f"{run.returncode} {run.stderr[-2000:]} {json.dumps(run.lines)[-3000:]}"
    assert run.returncode == 0 and run.result["is_error"] is False, why
    assert run.result["result"] == "Done: hello-from-bb.", why
    tool_uses = [b for line in run.of_type("assistant") for b in line["message"]["content"]
                 if b["type"] == "tool_use"]
    assert [(t["name"], t["input"]["command"]) for t in tool_uses] == [
        ("Bash", "echo hello-from-bb")], why
    messages = fake.routed("messages")
    assert len(messages) == 2, why
    first, second = fake.sent()
    assert "# Tools" in first and "Bash(" in first and len(first) < 60_000
    assert "hello-from-bb" in second and "# Tools" not in second  # only the new turn
    assert messages[0].path == messages[1].path  # the same thread

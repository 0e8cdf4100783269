"""Running the commands the README and docs show, as written, from a copy of the checkout.

``checkout()`` copies ``proxy/``, ``scripts/`` and ``pyproject.toml`` into a scratch
directory, with a ``.venv`` that is this interpreter (its ``bin/python`` and its packages,
plus the install stamp ``scripts/setup`` looks for), so ``bash scripts/serve`` and
``bash scripts/client`` run there exactly as a user runs them, install nothing, and read
the ``.env`` and ``config.json`` placed in that copy, never the developer's own.

``block()`` reads a fenced block marked ``<!-- KIND: NAME -->`` in a Markdown file.
``Started`` is a command that keeps running (a proxy), its output read line by line;
it runs in a session of its own, so that stopping it stops the proxy it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import shutil
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.fakes import anthropic_upstream as fake_anthropic
from tests.fakes import openai_upstream as fake_openai
from tests.fakes.anthropic_upstream import FakeAnthropicUpstream
from tests.fakes.openai_upstream import FakeOpenAIUpstream, JSONResponse, Stream

REPO = Path(__file__).resolve().parent.parent
ANSWER_PIECES = ["Hello", " there", "."]
ANSWER = "".join(ANSWER_PIECES)


def block(doc: Path, kind: str, name: str) -> str:
    """The fenced block right after ``<!-- KIND: NAME -->``."""
    text = doc.read_text(encoding="utf-8")
    found = re.search(rf"<!-- {kind}: {re.escape(name)} -->\s*```[\w-]*\n(.*?)```", text, re.S)
    assert found, f"{doc.name} has no block marked <!-- {kind}: {name} -->"
    return found.group(1)


def markers(doc: Path, kind: str) -> list[str]:
    return re.findall(rf"<!-- {kind}: ([\w-]+) -->", doc.read_text(encoding="utf-8"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def checkout(where: Path) -> Path:
    """A copy of the checkout at ``where/llm-dialect-proxy`` with this interpreter as
    its ``.venv``."""
    root = where / "llm-dialect-proxy"
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("proxy", "scripts"):
        shutil.copytree(REPO / folder, root / folder, ignore=skip)
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    venv = root / ".venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    (venv / "lib").symlink_to(Path(sys.prefix) / "lib")
    config = Path(sys.prefix) / "pyvenv.cfg"
    if config.is_file():
        shutil.copy(config, venv / "pyvenv.cfg")
    else:  # not a venv: see the interpreter's own packages
        (venv / "pyvenv.cfg").write_text(f"home = {Path(sys.executable).parent}\n"
                                         "include-system-site-packages = true\n")
    version = hashlib.sha1((root / "pyproject.toml").read_bytes()).hexdigest()[:12]
    (venv / f".installed-{version}").touch()
    return root


def clean_env(**extra: str) -> dict[str, str]:
    """No PROXY_*, BRIDGE_URL or other settings of the developer's leak into a command."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", **extra}


class Started:
    """A command still running, and what it has printed so far (stdout and stderr)."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            self.lines.append(line.decode(errors="replace").rstrip())

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    async def wait_for(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines:
                if found := re.search(pattern, line):
                    return found
            if self.proc.returncode is not None:
                await self._reader
                break
            await asyncio.sleep(0.05)
        raise AssertionError(f"no line matches {pattern!r}:\n{self.output}")

    async def exit_code(self, timeout: float = 30) -> int:
        code = await asyncio.wait_for(self.proc.wait(), timeout)
        await self._reader
        return code

    async def stop(self) -> None:
        """SIGTERM to the session the command started (ours alone), then wait."""
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 15)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                await self.proc.wait()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


async def start(script: str, cwd: Path, env: dict[str, str]) -> Started:
    proc = await asyncio.create_subprocess_exec(
        "bash", "-c", script, cwd=cwd, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        start_new_session=True)
    return Started(proc)


async def run(script: str, cwd: Path, env: dict[str, str],
              timeout: float = 60) -> tuple[int, str, str]:
    """A command run to its end: (exit status, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        "bash", "-c", script, cwd=cwd, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        start_new_session=True)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        raise
    return proc.returncode or 0, out.decode(), err.decode()


# --- upstreams that answer the way they were asked ---------------------------------------


class OpenAIServer(FakeOpenAIUpstream):
    """A fake OpenAI-compatible upstream: a stream when asked for one, else one body."""

    def _next_scenario(self) -> Any:
        body = self.requests[-1]["body"]
        if isinstance(body, dict) and body.get("stream"):
            return Stream(fake_openai.text_stream(ANSWER_PIECES))
        return JSONResponse(fake_openai.chat_completion(ANSWER))


class AnthropicServer(FakeAnthropicUpstream):
    """A fake Anthropic API (checking requests as the real one does), answering in kind."""

    def _next_scenario(self) -> Any:
        body = self.requests[-1]["body"]
        if isinstance(body, dict) and body.get("stream"):
            return Stream(fake_anthropic.text_stream(ANSWER_PIECES))
        return JSONResponse(fake_anthropic.message(ANSWER))


@contextlib.asynccontextmanager
async def serving(fake: FakeOpenAIUpstream) -> Any:
    """The fake on a free 127.0.0.1 port; yields its origin (no ``/v1``)."""
    base = await fake.start()
    try:
        yield base.removesuffix("/v1")
    finally:
        await fake.stop()


@contextlib.asynccontextmanager
async def in_process(app: web.Application) -> Any:
    """The proxy app in this event loop on a free 127.0.0.1 port; yields its origin."""
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None,
                           shutdown_timeout=1.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()

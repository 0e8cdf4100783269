"""One Claude Code CLI child process: started in its own process group, probed until
ready, written to once, read in chunks with a limit on silence, stopped for sure.

Measured with 2.1.330: on SIGTERM the CLI exits within about 0.1 s and removes its
messaging socket (``/tmp/cc-socks/<pid>.sock``); SIGKILL leaves that file behind. So a stop
is SIGTERM to the process group, then SIGKILL after ``TERM_GRACE``. With ``setpriv``
(util-linux) on the PATH the child is also started with a parent-death signal, so it dies
with the proxy even if the proxy is killed outright.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from proxy.dialects.claude_code import control
from proxy.dialects.claude_code.failures import exit_error
from proxy.errors import UpstreamError, UpstreamTimeout, UpstreamUnreachable

TERM_GRACE = 0.5  # seconds between SIGTERM and SIGKILL
READ_SIZE = 64 * 1024
STDERR_TAIL = 8 * 1024
INSTALL_HINT = ("Install it (npm install -g @anthropic-ai/claude-code, or pip install "
                "claude-agent-sdk, which bundles it) or point CLAUDE_CLI at it.")


@dataclass(frozen=True, slots=True)
class CLIStatus:
    """What a CLI said about itself, answering ``initialize``."""

    version: str
    logged_in: bool | None
    account: Mapping[str, Any]
    models: tuple[Mapping[str, Any], ...]


class CLIProcess:
    """One running CLI: its stdin for one request, its stdout in chunks."""

    def __init__(self, proc: asyncio.subprocess.Process, silence_timeout: float) -> None:
        self._proc = proc
        self._silence = silence_timeout
        self._stderr = bytearray()
        self._stderr_task = asyncio.ensure_future(self._drain_stderr())
        self._reaper: asyncio.Task[None] | None = None
        self.pid = proc.pid
        self.started = time.monotonic()
        self.ready_at: float | None = None

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode

    @property
    def stderr_tail(self) -> str:
        return self._stderr.decode("utf-8", "replace")

    async def send(self, data: bytes, *, close: bool = True) -> None:
        """Write ``data``; closing stdin after it lets the CLI exit after its answer."""
        stdin = self._proc.stdin
        assert stdin is not None
        try:
            stdin.write(data)
            await stdin.drain()
            if close:
                stdin.close()
        except (BrokenPipeError, ConnectionResetError):
            raise exit_error(await self.exit_status(), self.stderr_tail) from None

    async def read(self) -> bytes:
        """The next piece of stdout; b"" at its end. Silence for ``silence_timeout``
        seconds (CLAUDE_TIMEOUT) stops the process and raises ``UpstreamTimeout``."""
        stdout = self._proc.stdout
        assert stdout is not None
        try:
            return await asyncio.wait_for(stdout.read(READ_SIZE), self._silence)
        except TimeoutError:
            await self.stop()
            raise UpstreamTimeout(f"The Claude Code CLI said nothing for {self._silence:g} s "
                                  "(CLAUDE_TIMEOUT) and was stopped.") from None

    async def readline(self) -> bytes:
        stdout = self._proc.stdout
        assert stdout is not None
        return await stdout.readline()

    async def exit_status(self, wait: float = 1.0) -> int | None:
        """The exit status once stdout has ended (None: still running after ``wait``), with
        the last of stderr read."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._proc.wait()), wait)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._stderr_task), wait)
        return self._proc.returncode

    async def wait(self) -> int:
        return await self._proc.wait()

    async def stop(self) -> None:
        """SIGTERM to the process group now, SIGKILL after TERM_GRACE, then reaped. Safe to
        call again, and from a cancelled task: the reaping goes on even if this await is
        cancelled."""
        if self._reaper is None:
            _signal_group(self.pid, signal.SIGTERM)
            self._reaper = asyncio.ensure_future(self._reap())
        await asyncio.shield(self._reaper)

    async def _reap(self) -> None:
        try:
            await asyncio.wait_for(self._proc.wait(), TERM_GRACE)
        except TimeoutError:
            _signal_group(self.pid, signal.SIGKILL)
            await self._proc.wait()
        _signal_group(self.pid, signal.SIGKILL)  # whatever the CLI started in its group
        self._stderr_task.cancel()
        await asyncio.gather(self._stderr_task, return_exceptions=True)

    async def _drain_stderr(self) -> None:
        """Read stderr all along, so a chatty CLI never blocks on a full pipe; keep its end."""
        stderr = self._proc.stderr
        assert stderr is not None
        while piece := await stderr.read(READ_SIZE):
            self._stderr += piece
            del self._stderr[:-STDERR_TAIL]


async def spawn(command: Sequence[str], env: Mapping[str, str], cwd: str | None,
                silence_timeout: float = 120.0) -> CLIProcess:
    """Start one CLI in its own process group. A missing or unrunnable executable raises
    ``UpstreamUnreachable`` (503) saying how to install it."""
    guard = ["setpriv", "--pdeathsig", "KILL", "--"] if shutil.which("setpriv") else []
    try:
        proc = await asyncio.create_subprocess_exec(
            *guard, *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=dict(env), cwd=cwd, start_new_session=True)
    except OSError as exc:
        raise UpstreamUnreachable(f"The Claude Code CLI cannot be started ({command[0]}: "
                                  f"{exc.strerror or exc}). {INSTALL_HINT}", status=503) from None
    return CLIProcess(proc, silence_timeout)


async def probe(process: CLIProcess, timeout: float) -> None:
    """Wait until ``process`` answers the ready probe; stop it and raise if it does not."""
    try:
        await ask(process, control.PROBE, control.PROBE_ID, timeout, close=False)
    except BaseException:
        await process.stop()
        raise
    process.ready_at = time.monotonic()


async def check_cli(command: Sequence[str], env: Mapping[str, str], *, cwd: str | None = None,
                    timeout: float = 30.0) -> CLIStatus:
    """Start the CLI once and ask it who it is (``initialize``): the login check, the
    version and its models. Raises ``UpstreamUnreachable`` (503) if it cannot run."""
    process = await spawn(command, env, cwd)
    try:
        answer = await ask(process, control.initialize(), control.INIT_ID, timeout)
    finally:
        await process.stop()
    body = answer.get("response") or {}
    account = body.get("account") or {}
    return CLIStatus(str(body.get("claude_code_version") or ""), control.logged_in(account),
                     account, tuple(body.get("models") or ()))


async def ask(process: CLIProcess, line: bytes, request_id: str, timeout: float, *,
              close: bool = True) -> Mapping[str, Any]:
    """Send a control request and wait for its answer; an exit first is a start failure."""
    try:
        async with asyncio.timeout(timeout):
            with contextlib.suppress(UpstreamError):  # a dead pipe: the exit says more
                await process.send(line, close=close)
            while raw := await process.readline():
                answer = _answer(raw, request_id)
                if answer is not None:
                    return answer
    except TimeoutError:
        raise UpstreamTimeout(f"The Claude Code CLI was not ready within {timeout:g} s.") from None
    raise start_error(await process.exit_status(), process.stderr_tail)


def start_error(returncode: int | None, stderr: str) -> UpstreamError:
    """A CLI that ended before it was ready: missing (exit 127 from setpriv or a wrapper
    shell), not logged in, or broken."""
    if returncode == 127:
        return UpstreamUnreachable(f"The Claude Code CLI cannot be started: {stderr.strip()}. "
                                   f"{INSTALL_HINT}", status=503)
    return exit_error(returncode, stderr, when="before it was ready")


def _answer(raw: bytes, request_id: str) -> Mapping[str, Any] | None:
    try:
        line = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return control.answer_to(line, request_id) if isinstance(line, dict) else None


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)

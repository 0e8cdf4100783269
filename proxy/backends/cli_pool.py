"""A warm pool of Claude Code CLI processes: started and made ready ahead of demand, one
request each, replaced in the background, all stopped on close.

Measured with 2.1.330 (``proxy.dialects.claude_code.control``): a CLI does its start-up
work before it reads stdin and answers a ``mcp_status`` probe once done, without fixing
the session's settings, so a process can be started, probed and then handed any request
(its system prompt and model go in with the request). A ready process gave its first
token in about 0.1-0.25 s here where a cold start took 0.4-1.3 s.

* ``size`` processes (POOL_SIZE) are kept ready; a request takes one (``process()``), and
  a replacement starts at once. A process serves ONE request and is stopped after it, so
  no conversation's context ever reaches another.
* At most ``max_busy`` requests run at once; more wait, ``max_waiting`` of them for at most
  ``wait_timeout`` seconds, then get ``PoolBusy`` (503, ``retry-after``).
* A process that dies or outstays ``max_idle`` while ready is replaced; one not ready
  within ``start_timeout`` is killed; one silent for ``silence_timeout`` seconds
  (CLAUDE_TIMEOUT) during a request is stopped and its request fails with a timeout
  (``cli_process``). A cancelled request's child is stopped within a second; ``close()``
  stops them all.
* A CLI that cannot be started (missing, broken) or is not logged in makes every request
  fail at once with a 503 that says what to do, and the pool keeps trying in the
  background (the login is checked again, at most every ``login_recheck`` seconds, when a
  request comes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
import time
from collections import deque
from collections.abc import AsyncIterator, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from proxy.backends.cli_process import CLIProcess, CLIStatus, check_cli, probe, spawn
from proxy.dialects.claude_code.failures import LOGIN_HINT
from proxy.errors import UpstreamError, UpstreamUnreachable

log = logging.getLogger("proxy.cli_pool")
RETRY_AFTER = "5"  # seconds: a CLI request takes seconds; clients should come back soon
BACKOFF_MAX = 30.0
FAILED_STARTS = 3  # consecutive start failures before requests are refused
LOGIN_RECHECK = 10.0  # seconds between login checks while the CLI is not logged in


class PoolBusy(UpstreamError):
    """No CLI process is free and the queue is full, or the wait was too long."""

    status = 503
    kind = "overloaded"


@dataclass(frozen=True, slots=True)
class PoolStatus:
    size: int
    ready: int
    starting: int
    busy: int
    waiting: int
    problem: str | None  # why requests fail at once now, if they do


class CLIPool:
    def __init__(self, command: Sequence[str], *, env: Mapping[str, str], size: int = 3,
                 max_busy: int | None = None, max_waiting: int | None = None,
                 wait_timeout: float = 60.0, silence_timeout: float = 120.0,
                 start_timeout: float = 30.0, max_idle: float = 900.0,
                 cwd: str | None = None, check_login: bool = True,
                 login_recheck: float = LOGIN_RECHECK) -> None:
        if size < 1:
            raise ValueError("size must be at least 1")
        self.command = tuple(command)
        self._env = dict(env)
        self.size = size
        self._max_busy = max_busy or size
        self._max_waiting = size * 4 if max_waiting is None else max_waiting
        self._wait_timeout = wait_timeout
        self._silence = silence_timeout
        self._start_timeout = start_timeout
        self._max_idle = max_idle
        self._cwd = cwd
        self._own_cwd: str | None = None
        self._check_login = check_login
        self._login_recheck = login_recheck
        self._ready: deque[CLIProcess] = deque()
        self._starting = 0
        self._busy = 0
        self._waiting = 0
        self._changed = asyncio.Condition()
        self._tasks: set[asyncio.Task[None]] = set()
        self._live: set[CLIProcess] = set()
        self._failures = 0
        self._start_problem: UpstreamError | None = None  # the CLI does not start
        self._login_problem: UpstreamError | None = None  # it starts, but is not logged in
        self._login_checked = 0.0
        self._closed = False
        self.cli: CLIStatus | None = None  # what the login check learned
        self._checking: asyncio.Task[None] | None = None  # the login check under way

    # -------------------------------------------------------------------- life

    async def start(self) -> None:
        """Begin filling the pool (it does not wait for the processes to be ready)."""
        if self._cwd is None:
            # An empty directory: --restricted confines the CLI's file access to it.
            self._cwd = self._own_cwd = tempfile.mkdtemp(prefix="claude-cli-")
        if self._check_login:
            self._checking = self._background(self._login_check())
        self._refill()

    async def close(self) -> None:
        """Stop every child and every background task; nothing outlives the pool."""
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*(p.stop() for p in list(self._live)), return_exceptions=True)
        self._ready.clear()
        if self._own_cwd:
            shutil.rmtree(self._own_cwd, ignore_errors=True)
        async with self._changed:
            self._changed.notify_all()

    async def checked(self, timeout: float) -> CLIStatus | None:
        """What the login check learned (the CLI's version and models), waiting up to
        ``timeout`` for one still under way: so that a model list asked for just after
        start is already the whole one, not the built-in aliases alone."""
        checking = self._checking
        if checking is not None and not checking.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(checking), timeout)
        return self.cli

    def status(self) -> PoolStatus:
        problem = self._login_problem or self._start_problem
        return PoolStatus(self.size, len(self._ready), self._starting, self._busy,
                          self._waiting, problem.message if problem else None)

    async def filled(self) -> None:
        """Wait until ``size`` processes are ready (for tests and benchmarks)."""
        async with self._changed:
            await self._changed.wait_for(lambda: len(self._ready) >= self.size
                                         or self._closed)

    # --------------------------------------------------------------- requests

    @contextlib.asynccontextmanager
    async def process(self) -> AsyncIterator[CLIProcess]:
        """A ready process for one request; stopped when the block ends, however it ends."""
        process = await self._take()
        try:
            yield process
        finally:
            self._busy -= 1
            try:
                await process.stop()
            finally:
                self._live.discard(process)
                self._refill()
                async with self._changed:
                    self._changed.notify_all()

    async def _take(self) -> CLIProcess:
        self._raise_problem()
        if not self._can_serve() and self._waiting >= self._max_waiting:
            raise self._busy_error()
        self._waiting += 1
        try:
            async with self._changed, asyncio.timeout(self._wait_timeout):
                await self._changed.wait_for(lambda: self._can_serve() or self._closed
                                             or self._problem() is not None)
        except TimeoutError:
            raise self._busy_error() from None
        finally:
            self._waiting -= 1
        self._raise_problem()
        process = self._ready.popleft()
        self._busy += 1
        self._refill()
        return process

    def _problem(self) -> UpstreamError | None:
        """Why a request must fail at once: no login (whatever is ready would only say so
        too), or no CLI that starts while none is ready."""
        if self._closed:
            return PoolBusy("The Claude Code CLI pool is shut down.", status=503)
        if self._login_problem is not None:
            return self._login_problem
        return self._start_problem if not self._ready else None

    def _raise_problem(self) -> None:
        problem = self._problem()
        if problem is None:
            return
        if problem is self._login_problem and self._check_login \
                and time.monotonic() - self._login_checked > self._login_recheck:
            self._login_checked = time.monotonic()  # perhaps the user has logged in since
            self._checking = self._background(self._login_check())
        raise problem

    def _can_serve(self) -> bool:
        return bool(self._ready) and self._busy < self._max_busy

    def _busy_error(self) -> PoolBusy:
        error = PoolBusy(f"No Claude Code CLI process is free ({self._busy} busy, "
                         f"{self._starting} starting, {self._waiting} waiting; POOL_SIZE is "
                         f"{self.size}). Try again shortly.", status=503)
        error.retry_after = RETRY_AFTER
        return error

    # ----------------------------------------------------------- the children

    def _refill(self) -> None:
        while not self._closed and len(self._ready) + self._starting < self.size:
            self._starting += 1
            self._background(self._start_one())

    async def _start_one(self, delay: float = 0.0) -> None:
        process: CLIProcess | None = None
        try:
            await asyncio.sleep(delay)
            process = await spawn(self.command, self._env, self._cwd, self._silence)
            self._live.add(process)
            await probe(process, self._start_timeout)
        except UpstreamError as error:
            self._starting -= 1
            if process is not None:
                self._live.discard(process)
            await self._failed_start(error)
            return
        except BaseException:
            self._starting -= 1
            if process is not None:
                await process.stop()
                self._live.discard(process)
            raise
        self._starting -= 1
        self._failures = 0
        self._start_problem = None
        self._ready.append(process)
        self._background(self._watch_idle(process))
        async with self._changed:
            self._changed.notify_all()

    async def _failed_start(self, error: UpstreamError) -> None:
        self._failures += 1
        log.warning("a Claude Code CLI did not start (%d in a row): %s", self._failures,
                    error.message)
        if self._failures >= FAILED_STARTS or isinstance(error, UpstreamUnreachable):
            self._start_problem = error
            async with self._changed:
                self._changed.notify_all()
        if not self._closed:
            delay = min(BACKOFF_MAX, 0.5 * 2 ** (self._failures - 1))
            self._starting += 1
            self._background(self._start_one(delay))

    async def _watch_idle(self, process: CLIProcess) -> None:
        """Replace a ready process that dies, or that has waited ``max_idle`` seconds."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(process.wait()), self._max_idle)
        if process not in self._ready:
            return  # taken: its request looks after it
        self._ready.remove(process)
        if process.returncode is not None:
            log.warning("an idle Claude Code CLI exited (%s): %s", process.returncode,
                        process.stderr_tail[-300:])
        await process.stop()
        self._live.discard(process)
        self._refill()

    async def _login_check(self) -> None:
        self._login_checked = time.monotonic()
        try:
            self.cli = await check_cli(self.command, self._env, cwd=self._cwd,
                                       timeout=self._start_timeout)
        except UpstreamError as error:
            log.error("%s", error.message)
            return
        if self.cli.logged_in is False:
            if self._login_problem is None:
                log.error("%s", LOGIN_HINT)
            self._login_problem = UpstreamUnreachable(LOGIN_HINT, status=503)
        elif self._login_problem is not None:
            log.info("the Claude Code CLI is logged in now")
            self._login_problem = None
        async with self._changed:
            self._changed.notify_all()

    def _background(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


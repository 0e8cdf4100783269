"""Serving: in this process, or as a supervisor of ``--workers N`` processes on one port.

``serve`` runs the app here with ``web.run_app``. SIGTERM or SIGINT stops it gracefully:
the listening socket closes at once (new connections are refused, or go to a worker
still listening), requests in flight, streams included, get GRACE_PERIOD seconds to
finish, then the rest are cancelled (their clients see a cut stream) and the upstream
sessions are closed. A second SIGINT (Ctrl-C) ends the wait at once; a second SIGTERM
changes nothing.

The listening socket (each worker's own, with several) takes LISTEN_BACKLOG connections
waiting to be accepted, so a burst of clients connecting at once is held, not dropped;
the effective value (the kernel cuts it to net.core.somaxconn) is logged at start.

``supervise`` (N > 1) starts N workers, each ``python -m proxy.workers`` running ``serve``
with an app of its own: its own ClientSessions, key health and learned limits. They all
bind the port with SO_REUSEPORT and the kernel spreads new connections across them. The
supervisor loads neither aiohttp nor the app and holds no socket. It logs each worker's
PID; replaces a worker that dies, saying so (and gives up, exiting 1, when they die more
than RESTART_LIMIT times in RESTART_WINDOW seconds); on SIGTERM or SIGINT it passes
SIGTERM to every worker, waits the grace period and KILL_MARGIN more, kills any
straggler and exits 0 (at once on a second Ctrl-C). Workers sit in their own process
group, so a Ctrl-C in the terminal reaches only the supervisor, and a worker whose
supervisor vanished stops itself.

With several workers, ``/metrics`` must add up all of them: unless PROMETHEUS_MULTIPROC_DIR
is already set, the supervisor gives the workers a fresh temporary directory for it
(prometheus-client's multiprocess mode), marks dead workers' files, and removes it on exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from proxy.config import Settings, load_settings
from proxy.tuning import tune_process

if TYPE_CHECKING:
    from aiohttp import web

log = logging.getLogger("proxy.workers")

RESTART_LIMIT = 5  # replacements allowed within RESTART_WINDOW seconds before giving up
RESTART_WINDOW = 10.0
KILL_MARGIN = 5.0  # seconds past the grace period before the supervisor kills a worker
POLL = 0.1  # seconds between the supervisor's looks at its workers
METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR"  # prometheus-client's variable, not a setting
PROC_NET = Path("/proc/sys/net")


def check(settings: Settings) -> None:
    if settings.workers < 1:
        raise SystemExit(f"llm-dialect-proxy: WORKERS must be 1 or more, not {settings.workers}.")
    if settings.grace_period < 0:
        raise SystemExit("llm-dialect-proxy: GRACE_PERIOD must be 0 or more seconds.")
    if settings.listen_backlog < 1:
        raise SystemExit("llm-dialect-proxy: LISTEN_BACKLOG must be 1 or more.")
    if settings.workers > 1 and not hasattr(socket, "SO_REUSEPORT"):
        raise SystemExit("llm-dialect-proxy: --workers needs SO_REUSEPORT, which this system "
                         "lacks (Windows); run a single process.")


# --- one process -----------------------------------------------------------------------


def serve(settings: Settings, *, supervisor: int = 0) -> None:
    """Serve until SIGTERM or SIGINT, then shut down gracefully. ``supervisor``: the PID of
    the supervisor this process works for (0: none); a worker binds with SO_REUSEPORT."""
    # Imported here, so that the supervisor never loads aiohttp or the app.
    from aiohttp import web

    from proxy.app import create_app, server_options

    app = create_app(settings)
    tune_process()
    if supervisor:
        app.cleanup_ctx.append(_stop_when_orphaned(supervisor))
    else:  # the supervisor said it for its workers
        effective_backlog(settings.listen_backlog)
    loop = _event_loop()
    _stop_on_signals(loop, settings.grace_period)
    # aiohttp's shutdown waits shutdown_timeout for running handlers, then asks them to
    # stop (which a streaming handler does not notice) and waits as long again before
    # cancelling them: half the grace period each. 0 would mean "no limit" to aiohttp.
    # handler_cancellation: a client that disconnects cancels its handler, which closes
    # the upstream request at once instead of at the next write; a shutdown does not.
    try:
        web.run_app(app, host=settings.host, port=settings.port, reuse_port=bool(supervisor),
                    backlog=settings.listen_backlog,
                    shutdown_timeout=max(settings.grace_period, 0.002) / 2,
                    handle_signals=False, print=_listening(settings, supervisor), loop=loop,
                    **server_options())
    except OSError as exc:  # the port is taken, the address is not ours...
        raise SystemExit(f"llm-dialect-proxy: {exc}") from None
    log.info("stopped (PID %d)", os.getpid())


def _listening(settings: Settings, supervisor: int) -> Callable[[str], None]:
    """run_app calls its ``print`` once every site is bound and listening: only then does
    the log say so (a taken port says ``address already in use`` alone)."""
    where = f"http://{settings.host}:{settings.port}"
    processes = (f"{settings.workers} worker processes (this one PID {os.getpid()})"
                 if supervisor else "one process")

    def say(_: str) -> None:
        log.info("llm-dialect-proxy listening on %s with %s; point Claude Code at it with "
                 "ANTHROPIC_BASE_URL=%s", where, processes, where)
    return say


def effective_backlog(requested: int, proc: Path = PROC_NET) -> int:
    """The listen backlog the kernel will grant, logged: Linux cuts listen(2)'s silently
    to net.core.somaxconn, and a burst of connections beyond it has its SYNs dropped (the
    clients retry after 1 s, then 3 s, and some give up). Warns, with the sysctl that
    raises the cap, when it is lower than asked; likewise for the SYN queue, which
    tcp_max_syn_backlog bounds when SYN cookies are off. ``proc``: /proc/sys/net."""
    somaxconn = _read_int(proc / "core" / "somaxconn")
    if somaxconn is None:  # not Linux: the system applies its own cap, unseen
        log.info("listen backlog %d", requested)
        return requested
    effective = min(requested, somaxconn)
    if effective < requested:
        log.warning("LISTEN_BACKLOG is %d, but the kernel cuts it to net.core.somaxconn = "
                    "%d: more connections than that arriving at once will be dropped and "
                    "retried a second later. Raise the cap with `sysctl -w "
                    "net.core.somaxconn=%d` (persist it in /etc/sysctl.d/).",
                    requested, somaxconn, requested)
    else:
        log.info("listen backlog %d (net.core.somaxconn %d)", effective, somaxconn)
    syn = _read_int(proc / "ipv4" / "tcp_max_syn_backlog")
    if _read_int(proc / "ipv4" / "tcp_syncookies") == 0 and syn is not None and syn < effective:
        log.warning("SYN cookies are off and net.ipv4.tcp_max_syn_backlog is %d, below the "
                    "listen backlog %d: a burst of connections may see SYNs dropped. Raise "
                    "it with `sysctl -w net.ipv4.tcp_max_syn_backlog=%d`.", syn, effective,
                    effective)
    return effective


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _event_loop() -> asyncio.AbstractEventLoop:
    """uvloop when it is installed (it is a dependency on Linux and macOS): it roughly
    halves the event loop's share of each streamed chunk; the stdlib loop otherwise."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def _stop_on_signals(loop: asyncio.AbstractEventLoop, grace: float) -> None:
    """The first SIGTERM or SIGINT raises GracefulExit, as run_app's own handlers would,
    and says so in the log. Later, a SIGTERM changes nothing (systemd, Docker and the
    supervisor send one; a second should not cut streams short), a SIGINT (a second
    Ctrl-C) ends the process at once."""
    from aiohttp.web import GracefulExit

    received: list[signal.Signals] = []

    def stop(sig: signal.Signals) -> None:
        received.append(sig)
        if len(received) == 1:
            log.info("%s: shutting down (PID %d): no new connections; requests in flight "
                     "have %g s to finish", sig.name, os.getpid(), grace)
            raise GracefulExit
        if sig == signal.SIGINT:
            log.warning("SIGINT again: stopping now (PID %d), cutting the requests in "
                        "flight", os.getpid())
            os._exit(1)
        log.info("%s: already shutting down", sig.name)

    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):  # Windows: KeyboardInterrupt does it
            loop.add_signal_handler(sig, stop, sig)


def _stop_when_orphaned(supervisor: int) -> Callable[[web.Application], AsyncIterator[None]]:
    async def watch(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(_wait_for_orphaning(supervisor))
        yield
        task.cancel()
    return watch


async def _wait_for_orphaning(supervisor: int) -> None:
    """SIGTERM ourselves (a graceful stop) once the supervisor is gone: a SIGKILLed
    supervisor cannot pass a signal on, and a worker must not hold the port forever."""
    while os.getppid() == supervisor:
        await asyncio.sleep(1.0)
    log.warning("the supervisor (PID %d) is gone; stopping", supervisor)
    signal.raise_signal(signal.SIGTERM)


# --- the supervisor --------------------------------------------------------------------


def supervise(settings: Settings, argv: Sequence[str]) -> int:
    """Run ``settings.workers`` workers until SIGTERM or SIGINT; returns the exit status.
    ``argv``: the command-line arguments, which each worker reads its settings from."""
    if not _port_is_free(settings.host, settings.port):
        log.error("%s:%s is already in use (another instance?); not starting workers",
                  settings.host, settings.port)
        return 1
    effective_backlog(settings.listen_backlog)  # each worker's own listening socket
    with _workers_environment() as env:
        return _Supervisor(settings, argv, env).run()


def _port_is_free(host: str, port: int) -> bool:
    """Workers share the port with SO_REUSEPORT, which would also let them share it with a
    second instance started by mistake: bind once without it first, as a probe."""
    if port == 0:
        return True
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


@contextlib.contextmanager
def _workers_environment() -> Iterator[dict[str, str]]:
    """Our environment, plus a fresh PROMETHEUS_MULTIPROC_DIR unless one is set."""
    env = dict(os.environ)
    if env.get(METRICS_DIR):
        yield env
        return
    with tempfile.TemporaryDirectory(prefix="llm-dialect-proxy-metrics-") as path:
        log.info("workers share their Prometheus metrics through %s", path)
        yield {**env, METRICS_DIR: path}


class _Supervisor:
    def __init__(self, settings: Settings, argv: Sequence[str], env: dict[str, str]) -> None:
        self.count, self.grace, self.env = settings.workers, settings.grace_period, env
        self.command = [sys.executable, "-m", "proxy.workers", str(os.getpid()), *argv]
        self.workers: dict[int, subprocess.Popen[bytes]] = {}
        self.restarts: deque[float] = deque()
        self.received: list[int] = []  # SIGTERM and SIGINT, as they come

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        for _ in range(self.count):
            self._start()
        status = self._keep_running()
        self._stop_all()
        return status

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.received.append(signum)

    def _start(self) -> None:
        # process_group=0: a Ctrl-C in the terminal reaches the supervisor alone, which
        # alone decides what the workers get (one SIGTERM, or SIGKILL on a second Ctrl-C).
        proc = subprocess.Popen(self.command, env=self.env, stdin=subprocess.DEVNULL,
                                process_group=0)
        self.workers[proc.pid] = proc
        log.info("started worker %d (%d of %d)", proc.pid, len(self.workers), self.count)

    def _keep_running(self) -> int:
        """Replace the workers that exit, until a signal (0) or too many deaths (1)."""
        while not self.received:
            for pid, code in self._reap():
                if not self._may_restart():
                    log.error("worker %d exited with code %s; more than %d workers have "
                              "exited within %g s: giving up", pid, _describe(code),
                              RESTART_LIMIT, RESTART_WINDOW)
                    return 1
                log.warning("worker %d exited with code %s; starting a replacement",
                            pid, _describe(code))
                self._start()
            time.sleep(POLL)
        return 0

    def _reap(self) -> list[tuple[int, int]]:
        exited = [(pid, code) for pid, proc in self.workers.items()
                  if (code := proc.poll()) is not None]
        for pid, _ in exited:
            del self.workers[pid]
            self._forget(pid)
        return exited

    def _may_restart(self) -> bool:
        now = time.monotonic()
        while self.restarts and now - self.restarts[0] > RESTART_WINDOW:
            self.restarts.popleft()
        self.restarts.append(now)
        return len(self.restarts) <= RESTART_LIMIT

    def _stop_all(self) -> None:
        """SIGTERM every worker, wait out the grace period, kill the rest: at once on a
        SIGINT received meanwhile (a second Ctrl-C), as the workers themselves would."""
        count = len(self.workers)
        log.info("stopping %d %s; requests in flight have %g s to finish",
                 count, "worker" if count == 1 else "workers", self.grace)
        seen = len(self.received)
        for proc in self.workers.values():
            proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace + KILL_MARGIN
        while (self._running() and time.monotonic() < deadline
               and signal.SIGINT not in self.received[seen:]):
            time.sleep(POLL)
        for proc in self._running():
            log.warning("worker %d has not stopped; killing it", proc.pid)
            proc.kill()
        for pid, proc in self.workers.items():
            proc.wait()
            self._forget(pid)
        self.workers.clear()

    def _running(self) -> list[subprocess.Popen[bytes]]:
        return [proc for proc in self.workers.values() if proc.poll() is None]

    def _forget(self, pid: int) -> None:
        """Let prometheus-client drop a dead worker's live gauges (it is a dependency of
        the metrics, but the supervisor does without it)."""
        try:
            from prometheus_client import multiprocess
        except ImportError:
            return
        multiprocess.mark_process_dead(pid, self.env[METRICS_DIR])  # type: ignore[no-untyped-call]


def _describe(code: int) -> str:
    """``1``, or ``-9 (SIGKILL)`` for a worker a signal ended."""
    if code >= 0:
        return str(code)
    try:
        return f"{code} ({signal.Signals(-code).name})"
    except ValueError:
        return str(code)


# --- a worker --------------------------------------------------------------------------


def _worker(args: Sequence[str]) -> None:
    """``python -m proxy.workers SUPERVISOR_PID ARGS...``: read the settings from the same
    arguments (and environment, and .env) as the supervisor did, and serve."""
    from proxy.observe.logs import configure_logging

    settings = load_settings(args[1:])
    configure_logging(settings)
    serve(settings, supervisor=int(args[0]))


if __name__ == "__main__":
    _worker(sys.argv[1:])

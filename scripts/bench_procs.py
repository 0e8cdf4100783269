"""The benchmark's child processes (fake upstreams, proxies) and what is read off them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import aiohttp

HOST = "127.0.0.1"
REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def raise_open_files() -> int:
    """Lift this process's soft limit on open files to the hard one (children inherit it):
    a thousand streams through the proxy hold four thousand sockets. Returns the limit."""
    try:
        import resource
    except ImportError:  # not on this platform
        return -1
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        want = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
        except (ValueError, OSError):
            pass
    return soft


def family(pid: int) -> list[int]:
    """The process and its descendants (a proxy with --workers is a supervisor and its
    workers), from /proc on Linux; just the process elsewhere."""
    parents: dict[int, list[int]] = {}
    try:
        entries = [e for e in os.listdir("/proc") if e.isdigit()]
    except OSError:
        return [pid]
    for entry in entries:
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        out.append(todo.pop())
        todo += parents.get(out[-1], [])
    return out


def memory_mb(pid: int) -> tuple[float, float] | None:
    """(resident now, peak resident) in MB of a process and its descendants, summed, from
    /proc (Linux); None elsewhere. The peak (VmHWM) is the kernel's own high-water mark, so
    no sampling can miss it; summed over several processes it is an upper bound."""
    rss = hwm = 0.0
    for member in family(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            if member == pid:
                return None
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        try:
            rss += int(fields["VmRSS"].split()[0]) / 1024
            hwm += int(fields["VmHWM"].split()[0]) / 1024
        except (KeyError, ValueError, IndexError):
            return None
    return rss, hwm


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log: IO[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def log_tail(self, limit: int = 2000) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-limit:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def spawn(name: str, args: Sequence[str], port: int, env: Mapping[str, str] | None = None,
          cwd: Path | None = None) -> Child:
    """Start `python ARGS` in the repository (or `cwd`); its own session, so Ctrl-C reaches
    only us."""
    log = tempfile.TemporaryFile(prefix=f"bench-{name}-")  # noqa: SIM115 (Child.stop closes it)
    cmd, null, out = [sys.executable, *args], subprocess.DEVNULL, subprocess.STDOUT
    environ = {**os.environ, **(env or {})}
    proc = subprocess.Popen(cmd, cwd=cwd or REPO, stdin=null, stdout=log, stderr=out,
                            start_new_session=True, env=environ)
    return Child(name, proc, log, port)


async def wait_healthy(session: aiohttp.ClientSession, child: Child) -> None:
    url, deadline = f"{child.url}/health", time.monotonic() + 20
    while time.monotonic() < deadline:
        if child.proc.poll() is not None:
            raise RuntimeError(f"{child.name} exited: {child.proc.returncode}\n{child.log_tail()}")
        try:
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=1)) as resp:
                if resp.status == 200:
                    return
        except (aiohttp.ClientError, TimeoutError):
            pass
        await asyncio.sleep(0.05)
    raise RuntimeError(f"{child.name}: {url} not healthy within 20 s:\n{child.log_tail()}")


def members(pid: int | None) -> list[int]:
    """A process's family (`family`), or this process alone for None; resolved once per
    measurement, since listing /proc costs milliseconds."""
    return [os.getpid()] if pid is None else family(pid)


def cpu_seconds(pids: list[int]) -> float | None:
    """CPU time so far of the processes `pids` (the first one must exist): from each live
    thread's /proc/PID/task/TID/schedstat (Linux; nanoseconds, so a request of a few
    milliseconds can be measured). None where there is no such file."""
    total = 0.0
    for pid in pids:
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            if pid == pids[0]:
                return None
            continue
        for task in tasks:
            with contextlib.suppress(OSError):  # a thread that just ended
                stat = Path(f"/proc/{pid}/task/{task}/schedstat").read_text()
                total += int(stat.split()[0]) / 1e9
    return total


def io_calls(pids: list[int]) -> tuple[int, int] | None:
    """Read and write system calls so far (Linux /proc/PID/io: ``syscr``, ``syscw``) of
    the processes `pids`. An event loop reads a socket with read(2), so the reads say how
    many pieces the bytes it took arrived in."""
    reads = writes = 0
    for pid in pids:
        try:
            lines = Path(f"/proc/{pid}/io").read_text().splitlines()
        except OSError:
            if pid == pids[0]:
                return None
            continue
        fields = dict(line.split(": ", 1) for line in lines if ": " in line)
        reads += int(fields.get("syscr", 0))
        writes += int(fields.get("syscw", 0))
    return reads, writes


async def wait_listening(child: Child, seconds: float = 20.0) -> None:
    """Wait until `child` accepts connections on its port (a server with no /health)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if child.proc.poll() is not None:
            raise RuntimeError(f"{child.name} exited: {child.proc.returncode}\n{child.log_tail()}")
        try:
            _, writer = await asyncio.open_connection(HOST, child.port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        return
    raise RuntimeError(f"{child.name}: port {child.port} not open within {seconds:g} s")


def stop_tree(child: Child) -> None:
    """Stop `child` and then any descendant it left behind (a proxy's CLI processes, which
    it should stop itself), each by its PID, only if it is still the same process."""
    left = {pid: started(pid) for pid in family(child.proc.pid)[1:]}
    child.stop()
    for pid, when in left.items():
        if when is not None and started(pid) == when:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def started(pid: int) -> str | None:
    """When the process `pid` started (clock ticks after boot, /proc), or None: with the
    PID it names one process, even if the PID is reused later."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def load_text() -> str:
    """The 1, 5 and 15 minute load averages as /proc/loadavg says them (Linux)."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"

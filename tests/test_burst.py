"""No connection is lost under a burst: the listen backlog (LISTEN_BACKLOG) and its check.

A burst is made deterministic by stopping the proxy (SIGSTOP) while the connections are
opened: the kernel alone then decides which of them it completes (those its accept queue,
the listen backlog, can hold) and which SYNs it drops (to be retried a second later, and
dropped again while the queue stays full). Then the proxy continues (SIGCONT) and every
connection sends a request and must be answered. A backlog that did not reach listen(2)
(aiohttp's default is 128) fails the first two tests; the third shows the setting is what
the kernel got. Each test ends only the processes it started, by PID.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import orjson
import pytest

from proxy.config import SETTINGS
from proxy.workers import effective_backlog
from tests.test_workers import Proxy, free_port

REPO = Path(__file__).resolve().parent.parent
BURST = 300  # connections opened at once: more than aiohttp's default backlog of 128
SETTLE = 3.0  # seconds for the kernel to complete what it will while the proxy is stopped
BODY = orjson.dumps({"model": "claude-test", "messages": [{"role": "user", "content": "hi"}]})
REQUEST = (b"POST /v1/messages/count_tokens HTTP/1.1\r\nHost: 127.0.0.1\r\n"
           b"Content-Type: application/json\r\nConnection: close\r\n"
           b"Content-Length: %d\r\n\r\n%s" % (len(BODY), BODY))

pytestmark = pytest.mark.skipif(not Path("/proc/sys/net/core/somaxconn").exists(),
                                reason="Linux only: the accept queue is read off /proc")

Launch = Callable[..., Awaitable[Proxy]]


@pytest.fixture
async def launch(tmp_path: Path) -> AsyncIterator[Launch]:
    """``python -m proxy`` in front of an upstream that is never called (count_tokens is
    answered locally for an OpenAI upstream)."""
    started: list[Proxy] = []
    env_file = tmp_path / "empty.env"
    env_file.write_text("")
    env = {k: v for k, v in os.environ.items()
           if k.upper() not in {s.name.upper() for s in SETTINGS} | {"PROMETHEUS_MULTIPROC_DIR"}}

    async def start(*args: str) -> Proxy:
        port = free_port()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "proxy", "--host", "127.0.0.1", "--port", str(port),
            "--upstream", "http://127.0.0.1:9/v1", "--model", "m", "--api-key", "k",
            "--env-file", str(env_file), *args, cwd=REPO, env=env,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE, start_new_session=True)
        proxy = Proxy(proc, port)
        started.append(proxy)
        await proxy.wait_healthy()
        return proxy

    yield start
    for proxy in started:
        for pid in servers(proxy):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)  # so that it can be ended
        proxy.end()
        await proxy.proc.wait()


def servers(proxy: Proxy) -> list[int]:
    """The processes holding the listening sockets: the workers, or the proxy itself."""
    return proxy.workers or [proxy.proc.pid]


def somaxconn() -> int:
    return int(Path("/proc/sys/net/core/somaxconn").read_text())


def open_at_once(port: int, count: int) -> list[socket.socket]:
    """`count` non-blocking connects, issued back to back."""
    socks = []
    for _ in range(count):
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", port))
        socks.append(sock)
    return socks


def connected(socks: list[socket.socket], wait: float) -> int:
    """How many of the connects completed within `wait` seconds."""
    pending = {s.fileno(): s for s in socks}
    done = 0
    poller = select.poll()
    for fd in pending:
        poller.register(fd, select.POLLOUT)
    deadline = time.monotonic() + wait
    while pending:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        for fd, _ in poller.poll(left * 1000):
            poller.unregister(fd)
            sock = pending.pop(fd)
            done += sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
    return done


async def answered(sock: socket.socket) -> bytes:
    """Send the request on an open socket; the whole answer (the proxy closes it)."""
    loop = asyncio.get_running_loop()
    await loop.sock_sendall(sock, REQUEST)
    answer = bytearray()
    while chunk := await loop.sock_recv(sock, 65536):
        answer += chunk
    return bytes(answer)


async def burst(proxy: Proxy, count: int) -> tuple[int, list[bytes]]:
    """Open `count` connections while the proxy is stopped; then let it go on and send a
    request on each. Returns how many the kernel completed meanwhile, and the answers."""
    for pid in servers(proxy):
        os.kill(pid, signal.SIGSTOP)
    socks = open_at_once(proxy.port, count)
    try:
        established = connected(socks, SETTLE)
        for pid in servers(proxy):
            os.kill(pid, signal.SIGCONT)
        answers = await asyncio.wait_for(
            asyncio.gather(*(answered(s) for s in socks), return_exceptions=True), 60)
    finally:
        for sock in socks:
            sock.close()
    return established, [a if isinstance(a, bytes) else repr(a).encode() for a in answers]


def assert_all_answered(answers: list[bytes]) -> None:
    bad = [a[:120] for a in answers if not a.startswith(b"HTTP/1.1 200")]
    assert not bad, f"{len(bad)} of {len(answers)} not answered: {bad[:3]}"
    assert all(b'"input_tokens"' in a for a in answers)


@pytest.mark.skipif(somaxconn() < BURST, reason="net.core.somaxconn is below the burst")
async def test_a_burst_of_connections_is_held_and_every_one_answered(launch: Launch) -> None:
    proxy = await launch()
    await proxy.wait_log(r"listen backlog 2048")
    established, answers = await burst(proxy, BURST)
    assert established == BURST  # none left to a SYN retry
    assert_all_answered(answers)


@pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT") or somaxconn() < BURST,
                    reason="no SO_REUSEPORT, or net.core.somaxconn is below the burst")
async def test_each_worker_listens_with_the_backlog(launch: Launch) -> None:
    proxy = await launch("--workers", "2")
    await proxy.wait_log(r"started worker \d+ \(2 of 2\)")
    await proxy.wait_log(r"listen backlog 2048")
    established, answers = await burst(proxy, BURST)
    assert established == BURST
    assert_all_answered(answers)


async def test_the_backlog_setting_is_what_the_kernel_holds(launch: Launch) -> None:
    """A small backlog, on purpose: the kernel holds that many (Linux: one more) while
    the proxy is stopped and drops the rest's SYNs; they are still answered once their
    retried SYN gets through, after a second or more."""
    proxy = await launch("--listen-backlog", "20")
    established, answers = await burst(proxy, 60)
    assert 20 <= established <= 21
    assert_all_answered(answers)


def test_the_effective_backlog_is_logged_and_a_low_kernel_cap_warned(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="proxy.workers")
    proc = tmp_path / "net"
    (proc / "core").mkdir(parents=True)
    (proc / "ipv4").mkdir()
    (proc / "core" / "somaxconn").write_text("4096\n")
    (proc / "ipv4" / "tcp_syncookies").write_text("1\n")
    (proc / "ipv4" / "tcp_max_syn_backlog").write_text("128\n")
    assert effective_backlog(2048, proc) == 2048
    assert "listen backlog 2048 (net.core.somaxconn 4096)" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]

    (proc / "core" / "somaxconn").write_text("128\n")
    assert effective_backlog(2048, proc) == 128
    warning = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warning) == 1 and "sysctl -w net.core.somaxconn=2048" in warning[0]

    caplog.clear()
    (proc / "core" / "somaxconn").write_text("4096\n")
    (proc / "ipv4" / "tcp_syncookies").write_text("0\n")
    assert effective_backlog(2048, proc) == 2048
    warning = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warning) == 1 and "net.ipv4.tcp_max_syn_backlog=2048" in warning[0]

    assert effective_backlog(300, tmp_path / "nowhere") == 300  # no /proc: as asked

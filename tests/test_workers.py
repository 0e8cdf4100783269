"""``python -m proxy`` as real processes: workers sharing a port, a killed worker replaced,
and graceful shutdown (a stream in flight completes; one past the grace period is cut).

Each test starts the proxy on 127.0.0.1 in front of a fake upstream running in the test's
own event loop, reads the proxy's log from its stderr, and ends only the processes it
started, by PID.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest

from proxy.config import SETTINGS
from tests.fakes.openai_upstream import FakeOpenAIUpstream, Stream, text_stream

REPO = Path(__file__).resolve().parent.parent
STARTED = re.compile(r"started worker (\d+)")
MESSAGE = {"model": "claude-test", "max_tokens": 64, "stream": True,
           "messages": [{"role": "user", "content": "count"}]}
HEADERS = {"x-api-key": "client-key", "anthropic-version": "2023-06-01"}

pytestmark = pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="no SO_REUSEPORT")


class Proxy:
    """A ``python -m proxy`` process and the lines of its log."""

    def __init__(self, proc: asyncio.subprocess.Process, port: int) -> None:
        self.proc, self.port = proc, port
        self.lines: list[str] = []
        self.url = f"http://127.0.0.1:{port}"
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stderr is not None
        while line := await self.proc.stderr.readline():
            self.lines.append(line.decode(errors="replace").rstrip())

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    @property
    def workers(self) -> list[int]:
        """Every worker PID the supervisor has logged, in order."""
        return [int(m[1]) for line in self.lines if (m := STARTED.search(line))]

    async def wait_log(self, pattern: str, timeout: float = 15) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines:
                if m := re.search(pattern, line):
                    return m
            await asyncio.sleep(0.05)
        raise AssertionError(f"no log line matches {pattern!r} within {timeout} s:\n{self.log}")

    async def wait_healthy(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.returncode is None, f"the proxy exited:\n{self.log}"
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                if await health(self.url) == 200:
                    return
            await asyncio.sleep(0.05)
        raise AssertionError(f"{self.url}/health did not answer within {timeout} s:\n{self.log}")

    async def exit_code(self, timeout: float) -> int:
        try:
            code = await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            raise AssertionError(f"the proxy did not exit within {timeout} s:\n{self.log}") from None
        # The last lines (workers may hold the pipe a little longer than their supervisor).
        await asyncio.wait([self._reader], timeout=5)
        return code

    def end(self) -> None:
        """SIGKILL whatever is left of the processes this test started."""
        for pid in self.workers:
            if _is_worker(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        if self.proc.returncode is None:
            self.proc.kill()
        self._reader.cancel()


Launch = Callable[..., Awaitable[Proxy]]


@pytest.fixture
async def upstream() -> AsyncIterator[FakeOpenAIUpstream]:
    fake = FakeOpenAIUpstream()
    fake.base_url = await fake.start()  # type: ignore[attr-defined]
    yield fake
    await fake.stop()


@pytest.fixture
async def launch(upstream: FakeOpenAIUpstream, tmp_path: Path) -> AsyncIterator[Launch]:
    started: list[Proxy] = []
    empty_env_file = tmp_path / "empty.env"
    empty_env_file.write_text("")
    # No setting (nor a metrics directory) from the environment running the tests.
    env = {k: v for k, v in os.environ.items()
           if k.upper() not in {s.name.upper() for s in SETTINGS} | {"PROMETHEUS_MULTIPROC_DIR"}}

    async def start(*args: str, port: int | None = None, healthy: bool = True,
                    extra_env: dict[str, str] | None = None) -> Proxy:
        port = port or free_port()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "proxy", "--host", "127.0.0.1", "--port", str(port),
            "--upstream", upstream.base_url, "--model", "upstream-model",  # type: ignore[attr-defined]
            "--api-key", "sk-upstream-test", "--env-file", str(empty_env_file), *args,
            cwd=REPO, env={**env, **(extra_env or {})}, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            start_new_session=True)
        proxy = Proxy(proc, port)
        started.append(proxy)
        if healthy:
            await proxy.wait_healthy()
        return proxy

    yield start
    for proxy in started:
        proxy.end()
        await proxy.proc.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _is_worker(pid: int) -> bool:
    try:
        return b"proxy.workers" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def listeners(port: int) -> int | None:
    """Sockets listening on ``port`` (one per SO_REUSEPORT worker); None without /proc."""
    try:
        table = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return None
    local = f":{port:04X}"
    return sum(1 for row in table if (f := row.split())[1].endswith(local) and f[3] == "0A")


async def health(url: str) -> int:
    """GET /health on a fresh connection (so the kernel picks a worker each time)."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as s, \
            s.get(f"{url}/health", timeout=aiohttp.ClientTimeout(total=5)) as resp:
        await resp.read()
        return resp.status


async def wait_listeners(port: int, count: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while (found := listeners(port)) not in (None, count):
        assert time.monotonic() < deadline, f"{found} sockets listen on {port}, not {count}"
        await asyncio.sleep(0.05)


async def stream_through_signals(proxy: Proxy, *signals: signal.Signals) -> tuple[bytes, float]:
    """Stream a message; once its first bytes are in, send the proxy ``signals`` (the later
    ones once it says it is shutting down) and check that new connections are refused.
    Returns what the client got and when the last signal went."""
    received = bytearray()
    async with aiohttp.ClientSession() as session, session.post(
            f"{proxy.url}/v1/messages", json=MESSAGE, headers=HEADERS) as resp:
        assert resp.status == 200, await resp.text()
        received += await resp.content.readany()
        proxy.proc.send_signal(signals[0])
        await proxy.wait_log(r"shutting down \(PID \d+\): no new connections")
        for sig in signals[1:]:
            proxy.proc.send_signal(sig)
        signalled = time.monotonic()
        await asyncio.sleep(0.3)
        with pytest.raises(aiohttp.ClientConnectorError):
            await health(proxy.url)
        with contextlib.suppress(aiohttp.ClientPayloadError):
            async for chunk in resp.content.iter_any():
                received += chunk
    return bytes(received), signalled


async def test_workers_share_the_port_and_a_killed_worker_is_replaced(launch: Launch) -> None:
    proxy = await launch("--workers", "2")
    await proxy.wait_log(r"listening on .* with 2 worker processes")
    metrics_dir = Path((await proxy.wait_log(r"metrics through (\S+)"))[1])
    assert metrics_dir.is_dir()
    await wait_listeners(proxy.port, 2)
    first, second = proxy.workers
    assert all(_alive(pid) for pid in (first, second))
    assert {await health(proxy.url) for _ in range(20)} == {200}

    os.kill(first, signal.SIGKILL)
    await proxy.wait_log(rf"worker {first} exited with code -9 \(SIGKILL\); starting a replacement")
    await proxy.wait_log(r"started worker \d+ \(2 of 2\)")
    assert {await health(proxy.url) for _ in range(20)} == {200}  # the other one answers
    replacement = proxy.workers[-1]
    assert replacement not in (first, second) and _alive(replacement)
    await wait_listeners(proxy.port, 2)
    assert {await health(proxy.url) for _ in range(20)} == {200}

    proxy.proc.send_signal(signal.SIGTERM)
    assert await proxy.exit_code(timeout=10) == 0
    assert not any(_alive(pid) for pid in (second, replacement))
    assert not metrics_dir.exists(), "the supervisor left its metrics directory behind"


@pytest.mark.parametrize("workers", [1, 2])
async def test_sigterm_lets_a_stream_in_flight_complete(
        launch: Launch, upstream: FakeOpenAIUpstream, workers: int) -> None:
    """(A second SIGTERM, as from systemd and a supervisor both, changes nothing.)"""
    upstream.scenario = Stream(text_stream(["word "] * 15), delay=0.2)  # about 3.5 s
    proxy = await launch("--workers", str(workers), "--grace-period", "10")
    body, signalled = await stream_through_signals(proxy, signal.SIGTERM, signal.SIGTERM)
    assert body.count(b"event: content_block_delta") == 15, body
    assert body.rstrip().endswith(b'data: {"type":"message_stop"}'), body[-200:]
    assert await proxy.exit_code(timeout=10) == 0
    assert time.monotonic() - signalled > 2, "the proxy exited before the stream ended"
    assert "stopped" in proxy.log


@pytest.mark.parametrize("workers", [1, 2])
async def test_a_stream_longer_than_the_grace_period_is_cut(
        launch: Launch, upstream: FakeOpenAIUpstream, workers: int) -> None:
    upstream.scenario = Stream(text_stream(["word "] * 25), delay=0.2)  # about 5.5 s
    proxy = await launch("--workers", str(workers), "--grace-period", "1")
    body, signalled = await stream_through_signals(proxy, signal.SIGTERM)
    assert await proxy.exit_code(timeout=5) == 0
    took = time.monotonic() - signalled
    assert 0.9 < took < 3, f"exited {took:.2f} s after SIGTERM with a 1 s grace period"
    assert b"event: content_block_delta" in body
    assert b"message_stop" not in body, "the stream should have been cut"


@pytest.mark.parametrize("workers", [1, 2])
async def test_a_second_ctrl_c_stops_at_once(
        launch: Launch, upstream: FakeOpenAIUpstream, workers: int) -> None:
    upstream.scenario = Stream(text_stream(["word "] * 25), delay=0.2)  # about 5.5 s
    proxy = await launch("--workers", str(workers), "--grace-period", "30")
    body, signalled = await stream_through_signals(proxy, signal.SIGINT, signal.SIGINT)
    await proxy.exit_code(timeout=2)
    assert b"message_stop" not in body, "the stream should have been cut"
    assert not any(_alive(pid) for pid in proxy.workers)


async def test_workers_stop_when_the_supervisor_is_killed(launch: Launch) -> None:
    proxy = await launch("--workers", "2")
    metrics_dir = Path((await proxy.wait_log(r"metrics through (\S+)"))[1])
    await wait_listeners(proxy.port, 2)
    proxy.proc.kill()
    await proxy.exit_code(timeout=5)
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in proxy.workers):
        assert time.monotonic() < deadline, "workers outlived their supervisor"
        await asyncio.sleep(0.1)
    shutil.rmtree(metrics_dir)  # a killed supervisor cannot clean up


async def test_workers_that_keep_dying_make_the_supervisor_give_up(launch: Launch,
                                                                   tmp_path: Path) -> None:
    # A metrics directory that does not exist: every worker dies as it starts.
    proxy = await launch("--workers", "4", healthy=False,
                         extra_env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "missing")})
    assert await proxy.exit_code(timeout=60) == 1
    assert "giving up" in proxy.log
    assert proxy.log.count("starting a replacement") >= 5
    assert not any(_alive(pid) for pid in proxy.workers)


async def test_a_port_already_in_use_stops_the_supervisor_at_once(launch: Launch) -> None:
    with socket.socket() as taken:  # another instance, in effect
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        proxy = await launch("--workers", "2", port=taken.getsockname()[1], healthy=False)
        assert await proxy.exit_code(timeout=30) == 1
    assert "already in use" in proxy.log and not proxy.workers


async def test_metrics_add_up_across_workers(launch: Launch) -> None:
    """Any worker's /metrics counts what every worker served (multiprocess mode)."""
    proxy = await launch("--workers", "2")
    await wait_listeners(proxy.port, 2)

    async def served() -> float:
        async with aiohttp.ClientSession() as session, session.get(proxy.url + "/metrics") as r:
            text = await r.text()
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("llm_proxy_requests_total{") and 'route="/health"' in line)

    before = await served()
    for _ in range(30):  # a new connection each: the kernel spreads them over the workers
        assert await health(proxy.url) == 200
    await asyncio.sleep(0.3)
    assert await served() - before == 30
    answered_by = {m[1] for line in proxy.lines if " GET /health 200 " in line
                   if (m := re.search(r"worker=(\d+)", line))}
    assert len(answered_by) == 2, "both workers should have served some of them"
    proxy.proc.send_signal(signal.SIGTERM)
    assert await proxy.exit_code(timeout=10) == 0

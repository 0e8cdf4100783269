"""Fixtures for the store tests: a real ``redis-server`` of our own, and stores of each kind.

The server is Debian's ``redis-server`` (``$REDIS_SERVER_BIN``, else on ``PATH``), started
on 127.0.0.1 on a free port with a temporary directory, no persistence and no daemon, and
stopped by its PID. Without the binary the Redis tests skip, unless ``CI`` is set: then they
fail, since CI must install it (``scripts/setup test`` does).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from proxy.state.redis_store import RedisStore
from proxy.state.sqlite_store import SqliteStore
from proxy.state.store import MemoryStore, Store
from tests.support import unavailable

KINDS = ["memory", "sqlite", "redis"]


def find_redis_server() -> str | None:
    """``$REDIS_SERVER_BIN`` when set (and then only that), else ``redis-server`` on PATH."""
    chosen = os.environ.get("REDIS_SERVER_BIN")
    candidates = [chosen] if chosen else [shutil.which("redis-server"), "/usr/bin/redis-server"]
    for path in candidates:
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One ``redis-server`` process of this test run; it can be killed, paused and
    started again on the same port."""

    def __init__(self, binary: str, directory: Path) -> None:
        self.binary, self.directory = binary, directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 15.0) -> None:
        log = open(self.directory / "redis.log", "ab")  # noqa: SIM115 (the child keeps it)
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--daemonize", "no",
             "--dir", str(self.directory)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"redis-server exited:\n{self.log}")
            if self._answers():
                return
            time.sleep(0.02)
        raise AssertionError(f"redis-server did not answer within {timeout} s:\n{self.log}")

    def kill(self) -> None:
        """SIGKILL: gone at once, as a crash would leave it."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def pause(self) -> None:
        """SIGSTOP: the port still accepts connections, but nothing answers."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.resume()
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.kill()

    @property
    def log(self) -> str:
        path = self.directory / "redis.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _answers(self) -> bool:
        with contextlib.suppress(OSError), \
                socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
        return False


@pytest.fixture(scope="session")
def redis_bin() -> str:
    path = find_redis_server()
    if path is None:
        unavailable("redis-server not found: `apt-get install redis-server` (Debian; "
                    "scripts/setup test does), or set REDIS_SERVER_BIN.")
    return path


@contextlib.contextmanager
def running_redis(binary: str, directory: Path) -> Iterator[RedisServer]:
    server = RedisServer(binary, directory)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_server(redis_bin: str, tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[RedisServer]:
    """One server for the whole run; each test keeps to a key prefix of its own."""
    with running_redis(redis_bin, tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def own_redis(redis_bin: str, tmp_path: Path) -> Iterator[RedisServer]:
    """A server for this test alone, to kill or pause."""
    with running_redis(redis_bin, tmp_path) as server:
        yield server


class Stores:
    """Stores of one kind over one backing: each ``open()`` gives a new store (a new
    connection) on the same data. Memory has one store only, so it gives that again."""

    def __init__(self, kind: str, tmp_path: Path, server: RedisServer | None) -> None:
        self.kind, self._tmp_path, self._server = kind, tmp_path, server
        self._prefix = f"test-{uuid.uuid4().hex[:8]}:"
        self._memory = MemoryStore()
        self.opened: list[Store] = []

    @property
    def url(self) -> str:
        """What ``open_store`` in another process would open to reach the same data."""
        if self.kind == "sqlite":
            return f"sqlite://{self._tmp_path / 'state.sqlite3'}"
        assert self._server is not None, "memory is not shared between processes"
        return f"{self._server.url}?prefix={self._prefix}"

    def open(self) -> Store:
        if self.kind == "memory":
            return self._memory
        store: Store = (SqliteStore(self._tmp_path / "state.sqlite3") if self.kind == "sqlite"
                        else RedisStore(self.url))
        self.opened.append(store)
        return store

    async def close(self) -> None:
        for store in self.opened:
            await store.close()
        await self._memory.close()


@pytest.fixture(params=KINDS)
async def stores(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stores]:
    server = request.getfixturevalue("redis_server") if request.param == "redis" else None
    opener = Stores(request.param, tmp_path, server)
    yield opener
    await opener.close()


@pytest.fixture
def store(stores: Stores) -> Store:
    return stores.open()


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    """Poll ``check`` until it holds; fail if it does not within ``within`` seconds."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"still not so after {within} s")
        await asyncio.sleep(0.02)

"""The embedded file store: one SQLite file that every worker process on a machine shares
and that outlives a restart.

Each store owns one connection, used only by its own single worker thread, so the event
loop never waits on the disk. WAL mode lets readers go on while one writer holds the lock;
the busy timeout bounds how long a writer waits for that lock, and a deadline around each
call bounds the rest: a locked or stalled file gives ``StoreUnavailable``, never a hang.
Expiry times are wall-clock (``time.time``), shared by every process and kept across a
restart; reads ignore expired rows, and writes now and then delete a bounded batch of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from proxy.state.store import StoreUnavailable

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL,
    expires REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS entries_expires ON entries (expires);
"""
HAS_TABLE = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'entries'"
LIVE = "SELECT value, expires FROM entries WHERE key = ? AND expires > ?"
PUT = "INSERT OR REPLACE INTO entries (key, value, expires) VALUES (?, ?, ?)"
SWEEP = ("DELETE FROM entries WHERE key IN "
         "(SELECT key FROM entries WHERE expires <= ? LIMIT ?)")


class SqliteStore:
    """The ``Store`` Protocol over one SQLite file (``sqlite:///path``)."""

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 2.0,
                 sweep_interval: float = 60.0, sweep_batch: int = 1000,
                 now: Callable[[], float] = time.time) -> None:
        """``timeout``: how long a call may wait for another process's write lock; the
        whole call gets one second more. ``now``: the wall clock (injectable for tests)."""
        self.path = Path(path)
        self._timeout = timeout
        self._sweep_interval = sweep_interval
        self._sweep_batch = sweep_batch
        self._now = now
        self._next_sweep = 0.0
        self._connection: sqlite3.Connection | None = None
        self._closed = False
        # One thread: the connection is never shared between threads, and calls run in order.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-store")

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r})"

    async def get(self, key: str) -> bytes | None:
        def read(db: sqlite3.Connection) -> bytes | None:
            row = db.execute(LIVE, (key, self._now())).fetchone()
            return None if row is None else bytes(row[0])
        return await self._call(read)

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        def write(db: sqlite3.Connection) -> None:
            db.execute(PUT, (key, value, self._now() + ttl))
        await self._call(write, writes=True)

    async def set_if_absent(self, key: str, value: bytes, ttl: float) -> bool:
        def write(db: sqlite3.Connection) -> bool:
            now = self._now()
            with _immediate(db):
                if db.execute(LIVE, (key, now)).fetchone() is not None:
                    return False
                db.execute(PUT, (key, value, now + ttl))
                return True
        return await self._call(write, writes=True)

    async def incr(self, key: str, amount: int, ttl: float) -> int:
        def write(db: sqlite3.Connection) -> int:
            now = self._now()
            with _immediate(db):
                row = db.execute(LIVE, (key, now)).fetchone()
                # A live key keeps its expiry: a rate window must not slide with each hit.
                total = amount + (_as_int(row[0]) if row else 0)
                db.execute(PUT, (key, str(total).encode(), row[1] if row else now + ttl))
                return total
        return await self._call(write, writes=True)

    async def delete(self, key: str) -> None:
        def write(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM entries WHERE key = ?", (key,))
        await self._call(write, writes=True)

    async def scan(self, prefix: str, limit: int = 1000) -> list[tuple[str, bytes]]:
        def read(db: sqlite3.Connection) -> list[tuple[str, bytes]]:
            end = _prefix_end(prefix)
            query = "SELECT key, value FROM entries WHERE key >= ? AND expires > ?"
            params: tuple[object, ...] = (prefix, self._now())
            if end is not None:
                query += " AND key < ?"
                params += (end,)
            rows = db.execute(query + " ORDER BY key LIMIT ?", (*params, limit)).fetchall()
            return [(str(k), bytes(v)) for k, v in rows]
        return await self._call(read)

    async def sweep(self) -> int:
        """Delete up to one batch of expired rows; returns how many went."""
        return await self._call(self._sweep)

    async def ping(self) -> bool:
        """True when the file can be written now (the write lock taken and let go)."""
        def probe(db: sqlite3.Connection) -> None:
            db.execute("BEGIN IMMEDIATE")
            db.execute("ROLLBACK")
        try:
            await self._call(probe)
        except StoreUnavailable:
            return False
        return True

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # A thread stuck on a stalled disk is left behind, not waited for.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._timeout + 1.0):
                await asyncio.get_running_loop().run_in_executor(self._thread, self._drop)
        self._thread.shutdown(wait=False, cancel_futures=True)

    async def _call(self, work: Callable[[sqlite3.Connection], T], *,
                    writes: bool = False) -> T:
        """Run ``work`` on the store's thread within the deadline; failures of the file
        (locked, unreadable, stalled) become ``StoreUnavailable`` naming it."""
        def run() -> T:
            db = self._connect()
            try:
                result = work(db)
            except sqlite3.DatabaseError as exc:
                if not _is_busy(exc):  # a broken file or handle: open afresh next time
                    self._drop()
                raise
            if writes and self._now() >= self._next_sweep:
                with contextlib.suppress(sqlite3.OperationalError):  # the write stands
                    self._sweep(db)
            return result
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._timeout + 1.0):
                return await loop.run_in_executor(self._thread, run)
        except TimeoutError as exc:  # before OSError, whose subclass it is
            raise StoreUnavailable(f"sqlite store {self.path}: no answer within "
                                   f"{self._timeout + 1.0:g} s") from exc
        except (sqlite3.DatabaseError, OSError) as exc:
            raise StoreUnavailable(f"sqlite store {self.path}: {exc}") from exc

    def _connect(self) -> sqlite3.Connection:
        """The thread's connection, opened on first use (and again after a failed open)."""
        if self._connection is not None:
            return self._connection
        _create_private(self.path)
        db = sqlite3.connect(self.path, timeout=self._timeout, isolation_level=None,
                             check_same_thread=False)
        try:
            _enter_wal(db, self._timeout)
            db.execute("PRAGMA synchronous=NORMAL")
            _create_schema(db)
        except BaseException:
            db.close()
            raise
        self._connection = db
        return db

    def _drop(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(sqlite3.Error):
                self._connection.close()
            self._connection = None

    def _sweep(self, db: sqlite3.Connection) -> int:
        deleted = db.execute(SWEEP, (self._now(), self._sweep_batch)).rowcount
        # A full batch means more are waiting: sweep again on the next write.
        wait = 0.0 if deleted >= self._sweep_batch else self._sweep_interval
        self._next_sweep = self._now() + wait
        return int(deleted)


@contextlib.contextmanager
def _immediate(db: sqlite3.Connection) -> Iterator[None]:
    """One transaction holding the write lock from its start, so that a read-then-write is
    atomic across processes (and never deadlocks upgrading a read lock)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    finally:
        if db.in_transaction:
            db.execute("ROLLBACK")


def _enter_wal(db: sqlite3.Connection, timeout: float) -> None:
    """Switch the file to WAL. The switch answers "busy" at once, without the busy
    handler, while another process makes the same switch: so wait and try again here."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _create_schema(db: sqlite3.Connection) -> None:
    """Create the table unless it is there. Looking first needs no write lock, so a store
    opened while another process writes can still read."""
    if db.execute(HAS_TABLE).fetchone() is not None:
        return
    with _immediate(db):
        for statement in SCHEMA.split(";"):
            if statement.strip():
                db.execute(statement)


def _create_private(path: Path) -> None:
    """Make the folder (0700) and the file (0600) before SQLite does, so that what the
    store holds is readable by the proxy's user only (SQLite gives -wal and -shm the same
    mode as the file)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))


def _is_busy(exc: sqlite3.DatabaseError) -> bool:
    """Another connection holds the lock: worth waiting out, not worth reopening for."""
    return getattr(exc, "sqlite_errorname", "").startswith(("SQLITE_BUSY", "SQLITE_LOCKED"))


def _as_int(value: bytes) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"not an integer: {value[:40]!r}") from None


def _prefix_end(prefix: str) -> str | None:
    """The least string above every string that starts with ``prefix`` (None: no bound),
    so a prefix scan is a range on the primary key. SQLite orders text by its UTF-8 bytes,
    which is code point order."""
    stem = prefix.rstrip("\U0010ffff")
    if not stem:
        return None
    last = ord(stem[-1]) + 1
    if 0xD800 <= last <= 0xDFFF:  # surrogates cannot be encoded; skip past them
        last = 0xE000
    return stem[:-1] + chr(last)

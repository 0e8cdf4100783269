"""``open_store``: the scheme picks the store; with no URL, the worker count does."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.state import MemoryStore, open_store
from proxy.state.factory import default_sqlite_path, sqlite_path
from proxy.state.redis_store import RedisStore
from proxy.state.sqlite_store import SqliteStore


async def test_one_worker_and_no_url_is_memory(tmp_path: Path) -> None:
    for url in (None, "", "  "):
        assert isinstance(open_store(url, workers=1, state_directory=str(tmp_path)),
                          MemoryStore)


async def test_several_workers_and_no_url_share_a_file_in_the_state_directory(
        tmp_path: Path) -> None:
    store = open_store(None, workers=2, state_directory=str(tmp_path))
    assert isinstance(store, SqliteStore)
    assert store.path == tmp_path / "state.sqlite3"
    await store.set("k", b"v", 60)
    assert (tmp_path / "state.sqlite3").exists()
    await store.close()


def test_the_first_of_several_state_directories_is_ours() -> None:
    assert default_sqlite_path("/var/lib/a:/var/lib/b") == Path("/var/lib/a/state.sqlite3")


def test_without_a_state_directory_the_file_is_under_the_home_folder() -> None:
    expected = Path.home() / ".local/state/llm-dialect-proxy/state.sqlite3"
    assert default_sqlite_path(None) == expected
    assert default_sqlite_path("") == expected


async def test_memory_url_is_memory_even_with_several_workers() -> None:
    assert isinstance(open_store("memory://", workers=4, state_directory=None), MemoryStore)


def test_sqlite_urls_name_the_file() -> None:
    assert sqlite_path("sqlite:///var/lib/proxy/s.db") == Path("/var/lib/proxy/s.db")
    assert sqlite_path("sqlite://state/s.db") == Path("state/s.db")
    assert sqlite_path("sqlite://~/s.db") == Path.home() / "s.db"
    for bad in ("sqlite://", "sqlite:///var/lib/", "sqlite:///x.db?timeout=3"):
        with pytest.raises(ValueError, match="give a file"):
            sqlite_path(bad)


async def test_a_sqlite_url_opens_that_file(tmp_path: Path) -> None:
    store = open_store(f"sqlite://{tmp_path}/x.db", workers=1, state_directory=None)
    assert isinstance(store, SqliteStore)
    assert store.path == tmp_path / "x.db"
    await store.close()


async def test_redis_urls_open_a_redis_store() -> None:
    for url in ("redis://127.0.0.1:6379/0?prefix=team:", "rediss://:pw@127.0.0.1:6380/1",
                "REDIS://127.0.0.1"):
        store = open_store(url, workers=2, state_directory=None)
        assert isinstance(store, RedisStore)
        await store.close()
    store = open_store("redis://127.0.0.1:6379/0?prefix=team:", workers=1, state_directory=None)
    assert isinstance(store, RedisStore)
    assert store.prefix == "team:"
    await store.close()


@pytest.mark.parametrize("url", ["postgres://u:secret@h/db", "memory://x", "sqlite:/x.db",
                                 "/var/lib/state.db", "unix:///run/redis.sock"])
def test_another_scheme_is_a_value_error_naming_the_ones_we_take(url: str) -> None:
    with pytest.raises(ValueError) as caught:
        open_store(url, workers=1, state_directory=None)
    message = str(caught.value)
    assert "memory://, sqlite:///path, redis://, rediss://" in message
    assert "secret" not in message

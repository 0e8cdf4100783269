"""From a ``STATE_URL`` to a store: the one place that knows the schemes and the defaults.

* no URL: ``memory://`` with one worker; with several, the SQLite file ``state.sqlite3`` in
  ``$STATE_DIRECTORY`` (systemd sets it from ``StateDirectory=``), else in
  ``~/.local/state/llm-dialect-proxy/``;
* ``memory://``: this process only;
* ``sqlite:///absolute/path`` (or ``sqlite://relative/path``, ``sqlite://~/path``);
* ``redis://…`` and ``rediss://…`` (``?prefix=`` sets the key prefix).

Call it in each worker process, after the fork: a store holds threads and sockets.
"""

from __future__ import annotations

from pathlib import Path

from proxy.state.store import MemoryStore, Store

SCHEMES = ("memory://", "sqlite:///path", "redis://", "rediss://")
FALLBACK_DIRECTORY = Path("~/.local/state/llm-dialect-proxy")
FILE_NAME = "state.sqlite3"


def open_store(url: str | None, *, workers: int, state_directory: str | None) -> Store:
    """The store ``url`` names, or the default for ``workers`` (see the module docstring).
    ``state_directory`` is ``$STATE_DIRECTORY`` as the settings read it. Opens nothing yet:
    each store connects on its first call. A URL of another scheme is a ValueError."""
    url = (url or "").strip()
    if not url:
        if workers <= 1:
            return MemoryStore()
        url = "sqlite://" + str(default_sqlite_path(state_directory))
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme == "memory" and url.lower() == "memory://":
        return MemoryStore()
    if scheme == "sqlite":
        from proxy.state.sqlite_store import SqliteStore

        return SqliteStore(sqlite_path(url))
    if scheme in ("redis", "rediss"):
        from proxy.state.redis_store import RedisStore  # redis is imported only if used

        return RedisStore(url)
    raise ValueError(f"STATE_URL {_shown(url)!r} is not a store URL: use one of "
                     f"{', '.join(SCHEMES)}")


def check_url(url: str) -> None:
    """A ValueError when ``url`` is not a store URL this proxy opens (nothing is opened)."""
    url = url.strip()
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme == "sqlite":
        sqlite_path(url)
    elif not (url == "" or url.lower() == "memory://" or scheme in ("redis", "rediss")):
        raise ValueError(f"STATE_URL {_shown(url)!r} is not a store URL: use one of "
                         f"{', '.join(SCHEMES)}")


def default_sqlite_path(state_directory: str | None) -> Path:
    """The file several workers share when no URL is given. systemd may list several
    directories in ``$STATE_DIRECTORY`` (colon-separated): the first is ours."""
    first = (state_directory or "").split(":")[0]
    folder = Path(first) if first else FALLBACK_DIRECTORY.expanduser()
    return folder / FILE_NAME


def sqlite_path(url: str) -> Path:
    """``sqlite:///var/lib/x.db`` is ``/var/lib/x.db``: everything after ``sqlite://``."""
    rest = url.partition("://")[2]
    if not rest or rest.endswith("/") or "?" in rest:
        raise ValueError(f"STATE_URL {url!r}: give a file, as sqlite:///var/lib/proxy/"
                         f"{FILE_NAME} (no options)")
    return Path(rest).expanduser()


def _shown(url: str) -> str:
    """The URL without what might be a password."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}…@{rest.rpartition('@')[2]}" if "@" in rest else url


def store_label(store: Store) -> str:
    """How a store is named in messages and /health: its URL, never its password."""
    if isinstance(store, MemoryStore):
        return "memory://"
    label = getattr(store, "label", None)
    if isinstance(label, str):
        return label
    path = getattr(store, "path", None)
    return f"sqlite://{path}" if path is not None else type(store).__name__

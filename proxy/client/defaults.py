"""Where the client's defaults come from, when the caller gives none.

``PROXY_URL``, ``PROXY_API_KEY`` and ``PROXY_MODEL``; else claudebridge's client variables
(``BRIDGE_URL``, ``OPENROUTER_API_KEY``, ``OPENROUTER_MODEL``: ``proxy.migration``), so a
claudebridge user's shell works unchanged; else the local proxy and no key or model.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from proxy.migration import CLIENT_ALIASES

DEFAULT_URL = "http://127.0.0.1:3578"


@dataclass(frozen=True, slots=True)
class ClientDefaults:
    url: str
    api_key: str | None
    model: str | None
    borrowed: tuple[tuple[str, str], ...]  # (ours, theirs): ("PROXY_URL", "BRIDGE_URL")


def client_defaults(environ: Mapping[str, str] | None = None) -> ClientDefaults:
    environ = os.environ if environ is None else environ
    values: dict[str, str] = {}
    borrowed: list[tuple[str, str]] = []
    for ours, theirs in CLIENT_ALIASES:
        if environ.get(ours):
            values[ours] = environ[ours]
        elif environ.get(theirs):
            values[ours] = environ[theirs]
            borrowed.append((ours, theirs))
    return ClientDefaults(values.get("PROXY_URL") or DEFAULT_URL, values.get("PROXY_API_KEY"),
                          values.get("PROXY_MODEL"), tuple(borrowed))


def base_url(url: str) -> str:
    """The proxy's origin from any form of its address: a trailing ``/v1`` (the SDKs'
    habit) or ``/api/v1`` (claudebridge's) is dropped."""
    url = url.rstrip("/")
    for suffix in ("/api/v1", "/v1"):
        if url.endswith(suffix):
            return url[: -len(suffix)]
    return url

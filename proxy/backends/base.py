"""What every backend is: ``stream(request, call)`` yielding batches of canonical events.

A batch is the events one upstream read completed, so the edge can write them with one
``write()``; that is the whole difference from a plain event iterator, and it halves the
per-event cost on fast upstreams. Failures are ``proxy.errors.UpstreamError``s raised from
the iterator: before the first batch they become an HTTP error, after it an in-stream error.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from proxy.canonical import Event, Request
from proxy.routing import Route


@dataclass(frozen=True, slots=True)
class Call:
    """One client call, as the backend needs to know it."""

    message_id: str
    client_model: str  # the name the client asked for, echoed in every answer
    input_tokens: int  # the local estimate, until the upstream reports the real count
    client_key: str | None = None  # the client's own credential, for pass-through
    commit_wait: float = 15.0  # how long a silent upstream may hold the response headers


class Backend(Protocol):
    def stream(self, request: Request, call: Call, route: Route,
               key: str | None) -> AsyncIterator[list[Event]]:
        """Call ``route.model`` on the backend's provider with ``key``."""
        ...

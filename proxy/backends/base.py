"""What every backend is, and what it is given.

A backend is made once per provider when the app starts (``Class(provider, context)``),
``start()``-ed, and ``close()``-d with the app: it owns its resources (a process pool,
a thread pool; the HTTP kinds share the app's one ClientSession). ``stream(request, call,
route, key)`` returns an async generator of *batches* of canonical events: a batch is
what one upstream read completed, so the edge writes it with one ``write()``. Failures
are ``proxy.errors.UpstreamError``s raised from the generator: before the first batch
they become an HTTP error, after it an in-stream error.

Backends whose kind has a wire dialect (``proxy.kinds``) can also relay a client's
request of that dialect byte for byte (``Relaying``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import aiohttp
import orjson

from proxy.canonical import Event, Request
from proxy.config import Settings
from proxy.dialects.fields import parse_json_object
from proxy.errors import UpstreamStatusError
from proxy.redaction import Masker
from proxy.routing import Route
from proxy.state.store import Store
from proxy.web_tools.tavily import TavilyClient

Batches = AsyncGenerator[list[Event], None]


@dataclass(frozen=True, slots=True)
class Call:
    """One client call, as the backend needs to know it."""

    message_id: str
    client_model: str  # the name the client asked for, echoed in every answer
    input_tokens: int  # the local estimate, until the upstream reports the real count
    client_key: str | None = None  # the client's own credential, for pass-through
    client_headers: Mapping[str, str] = field(default_factory=dict)  # end-to-end ones
    body_size: int = 0  # the client's body, in bytes: large ones are rendered off the loop
    record: Callable[[bytes], None] | None = None  # for a session log: what the upstream said


@dataclass(frozen=True, slots=True)
class Context:
    """What the app gives every backend."""

    settings: Settings
    masker: Masker  # every secret the proxy holds, for error bodies and log lines
    store: Store  # state that outlives a request (learned limits, conversation maps)
    tavily: TavilyClient | None = None  # web search and fetch (proxy/web_tools); None: no key
    session: aiohttp.ClientSession | None = None  # the process's one, for every HTTP call


class Backend(Protocol):
    async def start(self) -> None:
        """Make the backend's resources (called once, as the app starts)."""
        ...

    async def close(self) -> None:
        """Release them (called once, as the app stops)."""
        ...

    def stream(self, request: Request, call: Call, route: Route, key: str | None) -> Batches:
        """Call ``route.model`` on the backend's provider with ``key``."""
        ...


@runtime_checkable
class Listing(Protocol):
    """A backend that can say which models it serves (``GET /v1/models``)."""

    async def models(self) -> list[tuple[str, str]]:
        """(id, display name) pairs, as a client should name them."""
        ...


@runtime_checkable
class Reporting(Protocol):
    """A backend with a health of its own (a CLI pool: ready, busy, or what is wrong)."""

    def health(self) -> dict[str, object]: ...


@runtime_checkable
class Debugging(Protocol):
    """A backend with state worth showing (``GET /debug/state``, ``POST /debug/clear``)."""

    async def debug_state(self) -> dict[str, object]: ...

    async def debug_clear(self) -> int:
        """Forget what it keeps; the number of entries forgotten."""
        ...


@runtime_checkable
class Pinning(Protocol):
    """A backend whose conversations belong to one key (a thread made with it)."""

    async def key_for(self, request: Request) -> str | None:
        """The key this request's conversation is bound to, if any."""
        ...


@dataclass(frozen=True, slots=True)
class RelayRequest:
    """A client's request to pass through as it came (its model name changed, if must)."""

    raw: bytes
    model: str  # the model the body names
    headers: Mapping[str, str]  # the client's end-to-end headers (``headers.from_client``)
    path: str = ""  # after the dialect's endpoint, e.g. "/count_tokens"
    query: str = ""
    parsed: Mapping[str, Any] | None = None  # the body's JSON, when it was parsed anyway
    ambiguous: bool = False  # the bytes name a model twice: parsers may differ on which

    def body_for(self, model: str) -> bytes:
        """The same bytes, unless the model name must change or the bytes are ambiguous
        (the body is then parsed, if it was not, and written again: one "model" key, the
        one the proxy routed by)."""
        if model == self.model and not self.ambiguous:
            return self.raw
        parsed = self.parsed if self.parsed is not None else parse_json_object(self.raw)
        return orjson.dumps({**parsed, "model": model})


@runtime_checkable
class Relaying(Backend, Protocol):
    async def open_relay(self, stack: contextlib.AsyncExitStack, relay: RelayRequest,
                         body: bytes, key: str | None) -> aiohttp.ClientResponse:
        """POST ``body`` (``relay``'s, for this route's model) to the provider; the
        response, held open in ``stack``."""
        ...

    async def refused(self, response: aiohttp.ClientResponse,
                      key: str | None) -> UpstreamStatusError:
        """The upstream's error answer, read whole (within a bound), secrets masked."""
        ...

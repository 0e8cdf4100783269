"""Calling upstreams with retries and failover, only before the client has seen a byte.

A plan is the routed model and its fallbacks. Each attempt takes the next well key of
the route's provider; on a connect error, 401/403, 429, 5xx or overload the key is
marked (it rests after three in a row, or as long as ``retry-after`` asks) and the same
request goes to the next key, then to the next fallback model (auth failures do not fall
back: another model would not fix a key). Bounded in attempts and in time. The same
``Attempts`` drive the translated path (``stream_with_failover``) and the relay
(``backends/relay.py``).

The commit point: an attempt counts as answered only once its first real content
arrived (a ``message_start`` alone does not count), so an upstream that fails right after
its first frame is still retried, or reported with an honest HTTP status. An upstream
silent for longer than the commit wait gets committed anyway, with a ``message_start``
made up here and its read still pending, so the edge can send headers and keep-alives.

Every error that leaves here for a client or a log has had every secret the proxy holds
masked (``redact``): upstreams quote the keys they refuse.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from proxy.backends.base import Backend, Batches, Call, Pinning
from proxy.backends.keys import KeyPool
from proxy.canonical import Event, MessageStart, Request, Usage
from proxy.config import Settings
from proxy.errors import (
    ProxyError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamStatusError,
    UpstreamUnreachable,
)
from proxy.observe.trace import Trace
from proxy.providers import Provider
from proxy.routing import Plan, Route

log = logging.getLogger("proxy.failover")
MAX_ATTEMPTS = 6
RETRY_BUDGET_SECONDS = 60.0
KEY_FAILURES = frozenset({401, 403, 429, 500, 502, 503, 504, 529})
FALLBACK_FAILURES = frozenset({429, 500, 502, 503, 504, 529})
NextBatch = asyncio.Future[list[Event] | None]


def passthrough_key(settings: Settings, provider: Provider, *,
                    client_key: str | None) -> str | None:
    """A provider with no keys of its own gets the client's, unless it is the proxy's key
    (which never leaves the proxy) or an Anthropic key bound for another provider."""
    if not client_key or client_key == settings.proxy_api_key:
        return None
    if client_key.startswith("sk-ant-") and provider.kind != "anthropic":
        return None
    return client_key


@dataclass(slots=True)
class Attempts:
    """The (route, key) pairs one request may try, in order, and what they taught."""

    plan: Plan
    pools: Mapping[str, KeyPool]
    fallback_key: Callable[[Provider], str | None]
    trace: Trace
    redact: Callable[[str], str] = str
    clock: Callable[[], float] = time.monotonic
    count: int = 0
    started: float = field(default=0.0)
    _route: int = 0
    _tried: set[str] = field(default_factory=set)
    _current: tuple[Route, str | None] | None = None
    _pinned: dict[str, str] = field(default_factory=dict)  # provider -> its bound key
    _failure: str = ""  # the last failure, told in the log once we know what comes next

    def __post_init__(self) -> None:
        self.started = self.clock()

    async def next(self) -> tuple[Route, str | None] | None:
        """The next attempt. Resting keys are skipped while any other route has a well one,
        and used, soonest back first, only when nothing else is left."""
        found = await self._find()
        if self._failure:
            then = (f"trying {found[0].provider.name} ({found[0].model})" if found
                    else "nothing is left to try")
            log.warning("%s; %s", self._failure, then)
            self._failure = ""
        return found

    async def _find(self) -> tuple[Route, str | None] | None:
        if self.count >= MAX_ATTEMPTS or self.clock() - self.started > RETRY_BUDGET_SECONDS:
            return None
        while self._route < len(self.plan.routes):
            route = self.plan.routes[self._route]
            pool = self.pools[route.provider.name]
            last_resort = self.count == 0 and self._route == len(self.plan.routes) - 1
            key = (await pool.take(frozenset(self._tried), resting_ok=last_resort,
                                   prefer=self._pinned.get(route.provider.name))
                   if len(pool) else None)
            if key is not None or (not len(pool) and not self._tried):
                self._tried.add(key or "")
                self.count += 1
                self._current = (route, key or self.fallback_key(route.provider))
                self.trace.attempt(route.provider.name, route.model, route.label)
                return self._current
            self._route, self._tried = self._route + 1, set()
        return None

    @staticmethod
    def one_only(plan: Plan, pools: Mapping[str, KeyPool]) -> bool:
        """Whether ``plan`` allows one attempt at most (``_find`` never tries a key
        twice): one route, on a provider with one key or none."""
        return len(plan.routes) == 1 and len(pools[plan.routes[0].provider.name]) <= 1

    async def pin(self, backends: Mapping[str, Backend], request: Request) -> None:
        """Conversations bound to a key (a backboard thread) try that key first."""
        for route in self.plan.routes:
            backend = backends[route.provider.name]
            if isinstance(backend, Pinning) and route.provider.name not in self._pinned:
                key = await backend.key_for(request)
                if key is not None:
                    self._pinned[route.provider.name] = key

    async def failed(self, error: UpstreamError) -> bool:
        """Note the failure; True when another attempt may help."""
        status = 502 if isinstance(error, UpstreamUnreachable) else error.status
        self.trace.errors.append(error.kind)
        route, key = self._current or (None, None)
        if route is not None and key and status in KEY_FAILURES:
            await self.pools[route.provider.name].failed(key, _seconds(error.retry_after))
        if status not in KEY_FAILURES:
            return False
        if status not in FALLBACK_FAILURES:  # auth: only another key of this provider
            self.plan = Plan(self.plan.routes[: self._route + 1])
        self._failure = (f"attempt {self.count} on {route.provider.name if route else '?'} "
                         f"failed ({status})")
        return True

    def explain(self, error: UpstreamError) -> UpstreamError:
        """The error as the client should see it, secrets masked. A provider refusing the
        proxy's own key is the proxy's fault, not the client's: a 502, never a 401 that
        sends Claude Code to /login and stops the SDKs retrying."""
        route, key = self._current or (None, None)
        if error.status in (401, 403) and route is not None and key in route.provider.keys \
                and not route.provider.backend_kind.passes_auth_errors:
            error = UpstreamStatusError(
                f"The upstream {route.provider.name!r} refused the proxy's key "
                f"({error.status}): {error.message}", status=502, kind="api_error")
        return self.scrubbed(error)

    def scrubbed(self, error: ProxyError) -> UpstreamError:
        error.message = self.redact(error.message)
        error.args = (error.message,)
        return error if isinstance(error, UpstreamError) else UpstreamError(error.message)

    async def succeeded(self) -> None:
        self.trace.answered()
        route, key = self._current or (None, None)
        if route is not None and key:
            await self.pools[route.provider.name].succeeded(key)


@dataclass(slots=True)
class Requests:
    """Each attempt's canonical request: the one parsed for the first attempt, handed over
    once and not kept, and for a retry the client's body parsed again (``again``). So a
    request in flight holds only its body's bytes until it is committed: a Claude Code
    request parses into several times its size, and a burst holds a thousand of them."""

    first: Request | None
    again: Callable[[], Request] | None  # None: the plan allows no second attempt

    def take(self) -> Request:
        request, self.first = self.first, None
        if request is not None:
            return request
        assert self.again is not None, "a plan of one attempt was asked for a second"
        return self.again()


async def stream_with_failover(backends: Mapping[str, Backend], attempts: Attempts,
                               requests: Requests | Request, call: Call,
                               commit_wait: float) -> Batches:
    if isinstance(requests, Request):
        requests = Requests(requests, _always(requests))
    first, batches, pending, made_up = await _commit(backends, attempts, requests, call,
                                                     commit_wait)
    del requests  # committed: no retry will need the request again
    try:
        yield first
        if pending is not None:
            batch = await pending
            if batch is None:
                return
            batch, made_up = _without_start(batch, made_up)
            if batch:
                yield batch
        async for batch in batches:
            batch, made_up = _without_start(batch, made_up)
            if batch:
                yield batch
    except UpstreamError as error:
        raise attempts.scrubbed(error) from None
    finally:
        if pending is not None and not pending.done():
            pending.cancel()
            await asyncio.gather(pending, return_exceptions=True)
        await batches.aclose()


def _always(request: Request) -> Callable[[], Request]:
    """A request that is kept anyway (a web-tools round): every attempt gets it."""
    return lambda: request


def _without_start(batch: list[Event], made_up: bool) -> tuple[list[Event], bool]:
    """While the start sent was made up, the upstream's own start is not sent again."""
    if not made_up:
        return batch, False
    kept: list[Event] = [e for e in batch if not isinstance(e, MessageStart)]
    return kept, len(kept) == len(batch)


async def _commit(backends: Mapping[str, Backend], attempts: Attempts, requests: Requests,
                  call: Call, wait: float
                  ) -> tuple[list[Event], Batches, NextBatch | None, bool]:
    last: UpstreamError | None = None
    first_request = requests.take()
    await attempts.pin(backends, first_request)
    request: Request | None = first_request
    del first_request
    while (target := await attempts.next()) is not None:
        route, key = target
        batches = backends[route.provider.name].stream(request or requests.take(), call,
                                                       route, key)
        request = None  # the backend holds it until its request is sent, no longer
        try:
            first, pending, made_up = await _first_content(batches, wait, call)
        except UpstreamError as error:
            await batches.aclose()
            if not await attempts.failed(error):
                raise attempts.explain(error) from None
            last = error
            continue
        except BaseException:
            await batches.aclose()
            raise
        await attempts.succeeded()
        return first, batches, pending, made_up
    if last is not None:
        raise attempts.explain(last)
    raise UpstreamUnreachable("No upstream could take this request.")


async def _first_content(batches: Batches, wait: float, call: Call
                         ) -> tuple[list[Event], NextBatch | None, bool]:
    """The events up to the first real content. An upstream silent for longer than
    ``wait`` (before its headers, or after its first frame) is committed anyway, with
    its read still pending: the client gets headers and keep-alives meanwhile. The last
    value says whether the start handed over was made up here."""
    first: list[Event] = []
    while True:
        pending: NextBatch = asyncio.ensure_future(anext(batches, None))
        try:
            done, _ = await asyncio.wait({pending}, timeout=wait if wait > 0 else None)
        except BaseException:
            pending.cancel()  # the generator must stop running before anyone closes it
            await asyncio.gather(pending, return_exceptions=True)
            raise
        if not done:
            if first:
                return first, pending, False
            start = MessageStart(call.message_id, call.client_model,
                                 Usage(input_tokens=call.input_tokens))
            return [start], pending, True
        more = pending.result()
        if more is None:
            if not first:
                raise UpstreamProtocolError("The upstream stream was empty.")
            return first, None, False
        first = first + more
        if not all(isinstance(event, MessageStart) for event in first):
            return first, None, False


def _seconds(retry_after: str | None) -> float | None:
    try:
        return float(retry_after) if retry_after else None
    except ValueError:
        return None  # an HTTP date: the default rest applies

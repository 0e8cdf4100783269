"""The same-dialect relay's attempts: the client's request goes up as it came (the model
name changed only when it must), to the first provider that answers, with the same keys,
retries and failover as the translated path (``failover.Attempts``).

Before any byte went out, a refused key or an overloaded upstream moves on to the next
key or fallback. What this hands the edge: an open answer to pass on byte for byte, or a
refusal to relay as the upstream shaped it (its body read whole, every secret masked);
``Exhausted`` when every attempt failed in a way another could have fixed, so the edge
may go on with fallbacks of the other dialect, translated.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp

from proxy.backends.base import Relaying, RelayRequest
from proxy.backends.failover import KEY_FAILURES, Attempts
from proxy.backends.headers import from_upstream
from proxy.backends.http_common import upstream_failures
from proxy.errors import UpstreamError, UpstreamUnreachable
from proxy.offload import off_loop


@dataclass(frozen=True, slots=True)
class Refusal:
    """An upstream's error answer, to relay as it came (secrets masked)."""

    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes


class Exhausted(Exception):
    """Every attempt failed with what another attempt could have fixed."""

    def __init__(self, refusal: Refusal | None, failure: UpstreamError) -> None:
        super().__init__(failure.message)
        self.refusal, self.failure = refusal, failure


async def relay_with_failover(backends: Mapping[str, Relaying], attempts: Attempts,
                              relay: RelayRequest, stack: contextlib.AsyncExitStack
                              ) -> aiohttp.ClientResponse | Refusal:
    """The first answer, held open in ``stack``; a final refusal; or ``Exhausted``."""
    refusal: Refusal | None = None
    failure: UpstreamError = UpstreamUnreachable("No upstream could take this request.")
    while (attempt := await attempts.next()) is not None:
        route, key = attempt
        backend = backends[route.provider.name]
        body = await off_loop(len(relay.raw), relay.body_for, route.model)
        held = contextlib.AsyncExitStack()
        try:
            with upstream_failures():
                response = await backend.open_relay(held, relay, body, key)
                refused = await backend.refused(response, key) if response.status >= 400 else None
        except UpstreamError as error:
            await held.aclose()
            failure = error
            if await attempts.failed(error):
                continue
            raise attempts.explain(error) from None
        except BaseException:
            await held.aclose()
            raise
        if refused is not None:
            await held.aclose()
            failure = refused
            refusal = Refusal(response.status, response.reason or "",
                              from_upstream(response.headers.items()), refused.raw)
            if response.status in KEY_FAILURES and await attempts.failed(refused):
                continue
            return refusal
        await attempts.succeeded()
        stack.push_async_exit(held)
        return response
    raise Exhausted(refusal, attempts.scrubbed(failure))

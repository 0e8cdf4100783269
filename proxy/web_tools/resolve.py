"""The DNS half of web_fetch's URL rule: a public name must not lead to a private address.

``urls.host_refused`` judges a host by its name; this resolves it and judges every address
it leads to, so that ``intranet.example.com`` pointing at 10.0.0.5 is refused too. The
resolver is a parameter (tests hand in their own; the default asks the system's).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

from proxy.web_tools.urls import address_is_public, host_refused

Resolver = Callable[[str], Awaitable[list[str]]]
RESOLVE_TIMEOUT = 5.0


async def system_resolver(host: str) -> list[str]:
    """Every address ``host`` resolves to, by the system's resolver (off the event loop)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def host_refusal(host: str, resolver: Resolver = system_resolver,
                       timeout: float = RESOLVE_TIMEOUT) -> str | None:
    """``url_not_allowed`` if ``host`` is refused by name or any of its addresses is not
    public, ``url_not_accessible`` if it does not resolve (in time), else None."""
    if host_refused(host):
        return "url_not_allowed"
    try:
        async with asyncio.timeout(timeout):
            addresses = await resolver(host)
    except (OSError, TimeoutError):
        return "url_not_accessible"
    if not addresses:
        return "url_not_accessible"
    for address in addresses:
        try:
            public = address_is_public(address.partition("%")[0])  # drop an IPv6 zone
        except ValueError:
            public = False
        if not public:
            return "url_not_allowed"
    return None

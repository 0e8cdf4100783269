"""The floor under the proxy's relay: the least an aiohttp relay can be, for the benchmark.

Not the proxy. ``scripts/bench.py --proxy-root scripts/bare_aiohttp_relay --directions
relay-openai,relay-anthropic`` starts this in the proxy's place (same flags, same port
and ``/health``): one shared ClientSession, uvloop, the body read whole, POSTed upstream,
every read of the answer written back at once. No routing, keys, failover, headers policy,
redaction, logs or metrics. What the proxy adds over this is what its own code costs;
what this adds over calling the upstream directly is aiohttp's server and client.
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import aiohttp
import uvloop
from aiohttp import web

SESSION = web.AppKey("session", aiohttp.ClientSession)
PASSED = ("content-type", "authorization", "x-api-key", "anthropic-version")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    args, _ = parser.parse_known_args()  # the proxy's other flags mean nothing here
    parts = urlsplit(args.upstream)
    origin = f"{parts.scheme}://{parts.netloc}"

    async def session_ctx(app: web.Application) -> AsyncIterator[None]:
        app[SESSION] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1000))
        yield
        await app[SESSION].close()

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def relay(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() in PASSED}
        async with request.app[SESSION].post(origin + request.path, data=body,
                                               headers=headers) as upstream:
            response = web.StreamResponse(status=upstream.status)
            response.content_type = upstream.content_type
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    app = web.Application()
    app.cleanup_ctx.append(session_ctx)
    app.router.add_get("/health", health)
    app.router.add_post("/{path:.*}", relay)
    web.run_app(app, host=args.host, port=args.port, access_log=None, print=None,
                loop=uvloop.new_event_loop())


if __name__ == "__main__":
    main()

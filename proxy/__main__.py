"""``python -m proxy`` and the ``llm-dialect-proxy`` command: settings, logging, serve."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Sequence
from urllib.parse import urlsplit

from aiohttp import web

from proxy.app import create_app
from proxy.config import Settings, load_settings

log = logging.getLogger("proxy")


def main(argv: Sequence[str] | None = None) -> None:
    settings = load_settings(argv)
    logging.basicConfig(level=settings.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The logging manual's own speed-ups: no caller lookup, thread or process names per
    # record (none of them is in the format); the access line is written once a request.
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    _announce(settings)
    # handler_cancellation: a client that disconnects cancels its handler, which closes
    # the upstream request at once instead of at the next write.
    web.run_app(create_app(settings), host=settings.host, port=settings.port,
                access_log=None, handler_cancellation=True, print=None, loop=_event_loop())


def _event_loop() -> asyncio.AbstractEventLoop:
    """uvloop when it is installed (it is a dependency on Linux and macOS): it roughly
    halves the event loop's share of each streamed chunk; the stdlib loop otherwise."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def _announce(settings: Settings) -> None:
    where = f"http://{settings.host}:{settings.port}"
    if not settings.upstream_configured:
        log.warning(
            "No upstream is configured, so requests will be refused with a clear error. "
            "Set one with --upstream URL (or UPSTREAM_URL in the environment or .env): an "
            "OpenAI-compatible base URL ending in /v1, e.g. "
            "`python -m proxy --upstream https://api.deepseek.com/v1 --model deepseek-chat`.")
    else:
        model = settings.model or "(the client's own model name)"
        log.info("forwarding to %s (%s) as model %s", _without_credentials(settings.upstream_url),
                 settings.upstream_dialect, model)
    log.info("llm-dialect-proxy listening on %s; point Claude Code at it with "
             "ANTHROPIC_BASE_URL=%s", where, where)


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    if not (parts.username or parts.password):
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return parts._replace(netloc=f"***@{host}").geturl()


if __name__ == "__main__":
    main()

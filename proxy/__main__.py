"""``python -m proxy`` and the ``llm-dialect-proxy`` command: settings, logging, serve
(in this process, or through ``--workers N`` processes: ``proxy.workers``)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from urllib.parse import urlsplit

from proxy import workers
from proxy.config import Settings, load_settings
from proxy.observe.logs import configure_logging
from proxy.web_tools.configured import tavily_settings

log = logging.getLogger("proxy")


def main(argv: Sequence[str] | None = None) -> None:
    settings = load_settings(argv)
    configure_logging(settings)
    workers.check(settings)
    tavily_settings(settings)  # bad Tavily settings stop the start before any worker
    _announce(settings)
    if settings.workers > 1:
        sys.exit(workers.supervise(settings, sys.argv[1:] if argv is None else argv))
    workers.serve(settings)


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
    processes = (f"{settings.workers} worker processes" if settings.workers > 1
                 else "one process")
    log.info("llm-dialect-proxy listening on %s with %s; point Claude Code at it with "
             "ANTHROPIC_BASE_URL=%s", where, processes, where)


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    if not (parts.username or parts.password):
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return parts._replace(netloc=f"***@{host}").geturl()


if __name__ == "__main__":
    main()

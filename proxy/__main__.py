"""``python -m proxy`` and the ``llm-dialect-proxy`` command: settings, logging, serve
(in this process, or through ``--workers N`` processes: ``proxy.workers``)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from urllib.parse import urlsplit

from proxy import workers
from proxy.config import Settings, claude_cli, load_settings
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
    """What the settings amount to; ``listening on …`` follows once the port is bound."""
    for level, note in settings.seed_notes:
        log.log(level, "%s", note)
    if settings.providers_file is not None:
        file = settings.providers_file
        for provider in file.providers:
            models = ", ".join(m.id for m in provider.models) or "(none listed)"
            log.info("providers file %s: %s at %s (%s), models %s", file.path, provider.name,
                     _without_credentials(provider.base_url), provider.kind, models)
    elif settings.upstream_url:
        model = settings.model or "(the client's own model name)"
        log.info("forwarding to %s (%s) as model %s", _without_credentials(settings.upstream_url),
                 settings.upstream_dialect, model)
    elif settings.upstream_configured:  # a kind that needs no URL: the Claude Code CLI
        log.info("serving from the local Claude Code CLI (claude-code): %s, %d processes "
                 "kept ready", claude_cli(settings), settings.pool_size)
        _warn_if_reachable(settings)
    else:
        log.warning(
            "No upstream is configured, so requests will be refused with a clear error. "
            "Set one with --upstream URL (or UPSTREAM_URL in the environment or .env): an "
            "OpenAI-compatible base URL ending in /v1, e.g. `bash scripts/serve --upstream "
            "https://api.deepseek.com/v1 --model deepseek-chat`; "
            "or several with --config FILE (a config.json in the working directory is read "
            "by itself); or --upstream-dialect backboard with UPSTREAM_API_KEY, or "
            "--upstream-dialect claude-code for the local Claude Code CLI.")


def _warn_if_reachable(settings: Settings) -> None:
    """The CLI speaks for its user's subscription: listening beyond this machine lets
    others use it. Allowed (HOST says so), but said plainly."""
    if settings.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("HOST=%s: the Claude Code CLI backend answers anyone who reaches this "
                    "address, on your subscription; set PROXY_API_KEY, or listen on "
                    "127.0.0.1 (the default). Mind the provider's terms (README).",
                    settings.host)


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    if not (parts.username or parts.password):
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return parts._replace(netloc=f"***@{host}").geturl()


if __name__ == "__main__":
    main()

"""How the Claude Code CLI fails, as the proxy's errors, naming the cause the CLI reported.

Sans-I/O. Observed with 2.1.330 (``tests/fixtures/claude_code_cli``): once its own retries
are spent, the CLI reports an API failure as a made-up assistant message (model
``<synthetic>``, ``is_api_error_message``, ``error`` such as ``rate_limit``,
``authentication_failed``, ``invalid_request``, ``unknown``; ``api_error_status``; the
text "API Error: 400 …"), then an ``is_error`` result, and exits 1. A subscription's
rejected rate limit comes first as a ``rate_limit_event`` with ``resetsAt``. With no
credentials it makes no request at all: "Not logged in · Please run /login".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from proxy.errors import (
    UpstreamError,
    UpstreamProtocolError,
    UpstreamStreamError,
    status_for_upstream,
)

LOGIN_HINT = ("The Claude Code CLI is not logged in: run `claude login` (a Claude "
              "subscription), or `claude setup-token` and set CLAUDE_CODE_OAUTH_TOKEN, or set "
              "ANTHROPIC_API_KEY, in the environment the proxy runs in.")
_LOGIN_WORDS = ("not logged in", "/login", "invalid api key", "oauth token")


def reported_error(text: str, *, error: str | None = None, status: int | None = None,
                   rejected: Mapping[str, Any] | None = None,
                   now: float | None = None) -> UpstreamError:
    """The error for a failure the CLI reported: ``text`` is its message, ``error`` its
    short kind, ``status`` the API's HTTP status when there was one, ``rejected`` the
    ``rate_limit_info`` of a rejected rate-limit event seen before (with ``now``, the
    clock, it gives ``retry-after``)."""
    said = text.strip() or "no message"
    if rejected is not None or error == "rate_limit" or status == 429:
        failure = UpstreamStreamError(f"The Claude Code CLI was rate limited: {said}",
                                      status=429, kind="rate_limit")
        failure.retry_after = _retry_after(rejected, now)
        return failure
    if error == "authentication_failed" or _mentions_login(said):
        return UpstreamStreamError(f"{LOGIN_HINT} (The CLI said: {said})", status=503,
                                   kind="api_error")
    mapped, kind = status_for_upstream(status) if status else (502, "api_error")
    return UpstreamStreamError(f"The Claude Code CLI reported: {said}", status=mapped,
                               kind=kind)


def exit_error(returncode: int | None, stderr: str, *,
               when: str = "before its answer was complete") -> UpstreamError:
    """The CLI ended (or was ended) without a result line: its exit and last words."""
    last = " ".join(stderr.strip().splitlines()[-3:])[-500:]
    if _mentions_login(last):
        return UpstreamStreamError(f"{LOGIN_HINT} (The CLI said: {last})", status=503,
                                   kind="api_error")
    if returncode is None:
        how = "stopped answering"
    elif returncode < 0:
        how = f"was killed by signal {-returncode}"
    else:
        how = f"exited with status {returncode}"
    said = f": {last}" if last else "."
    return UpstreamProtocolError(f"The Claude Code CLI {how} {when}{said}")


def _mentions_login(text: str) -> bool:
    lowered = text.lower()
    return any(word in lowered for word in _LOGIN_WORDS)


def _retry_after(rejected: Mapping[str, Any] | None, now: float | None) -> str | None:
    """Seconds until the limit resets (``resetsAt`` is epoch seconds), at least one."""
    resets = rejected.get("resetsAt") if rejected else None
    if not isinstance(resets, int | float) or isinstance(resets, bool) or now is None:
        return None
    return str(max(1, math.ceil(resets - now)))

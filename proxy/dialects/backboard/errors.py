"""backboard's failures in words a client can act on: HTTP error bodies and in-stream causes.

Sans-I/O. backboard is a FastAPI server (backboard.md 1.1): an error body is
``{"detail": "..."}``, or for a validation error (422) ``{"detail": [{"loc", "msg",
"type"}, ...]}``. Either becomes one readable message that names backboard. The status a
client sees follows ``errors.status_for_upstream``, with three backboard rules:

* a refused key (401 or 403) is ``authentication``: the client hears its status, not a 502;
* 429 keeps its ``retry-after``;
* a cause that says the context is full reads "prompt is too long" (a 400), the words
  Claude Code answers by compacting, and a model backboard does not know is a 404.
"""

from __future__ import annotations

from typing import Any

import orjson

from proxy.errors import UpstreamStatusError, UpstreamStreamError, status_for_upstream

_CONTEXT_FULL = ("context_length", "context length", "context window", "too many tokens",
                 "maximum context")
_NO_SUCH_MODEL = ("model_not_found", "does not exist", "unknown model")
_RATE_LIMITED = ("rate limit", "rate_limit", "too many requests")
MAX_MESSAGE = 1000


def detail_message(raw: bytes) -> str:
    """The words of an error body: ``detail`` as a string, a 422 list as ``loc: msg``
    entries joined with "; ", another JSON shape's ``message`` or ``error``, or the text."""
    try:
        body: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _cut(raw.decode("utf-8", "replace").strip())
    if isinstance(body, dict):
        for name in ("detail", "message", "error"):
            if body.get(name):
                return _cut(_words(body[name]))
    return _cut(_words(body)) if body else ""


def _words(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "; ".join(_entry(item) for item in value)
    if isinstance(value, dict):
        return _entry(value)
    return orjson.dumps(value).decode()


def _entry(item: Any) -> str:
    """One FastAPI validation entry: ``body.content: Field required``."""
    if not isinstance(item, dict):
        return _words(item)
    message = item.get("msg") or item.get("message") or orjson.dumps(item).decode()
    loc = item.get("loc")
    if isinstance(loc, list) and loc:
        return f"{'.'.join(str(part) for part in loc)}: {message}"
    return str(message)


def _cut(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE] + "…"


def http_error(status: int, raw: bytes, *, retry_after: str | None = None) -> UpstreamStatusError:
    """backboard's HTTP error answer as the error the client should see."""
    cause = detail_message(raw) or f"HTTP {status}"
    mapped, kind = status_for_upstream(status)
    if status in (401, 403):
        mapped, kind = status, "authentication"
        message = f"backboard refused the API key ({status}): {cause}"
    else:
        message = f"backboard answered HTTP {status}: {cause}"
        mapped, kind, message = _by_cause(cause, mapped, kind, message)
    error = UpstreamStatusError(message, status=mapped, kind=kind)
    error.retry_after = retry_after
    error.raw = raw
    return error


def stream_error(frame: dict[str, Any], what: str) -> UpstreamStreamError:
    """An ``error`` or ``run_failed`` frame (or a run that ended badly) as an error naming
    backboard's cause; ``what`` says which it was, e.g. "backboard's run failed"."""
    cause = frame_cause(frame)
    message = f"{what}: {cause}" if cause else f"{what}."
    status, kind, message = _by_cause(cause, 502, "api_error", message)
    return UpstreamStreamError(message, status=status, kind=kind)


def frame_cause(frame: dict[str, Any]) -> str:
    """The words a stream frame or reply gives for its failure, if any."""
    for name in ("error", "message", "detail", "status_message"):
        value = frame.get(name)
        if value:
            if isinstance(value, dict):
                value = value.get("message") or value.get("detail") or _words(value)
            return _cut(str(value) if not isinstance(value, list) else _words(value))
    return ""


def _by_cause(cause: str, status: int, kind: str, message: str) -> tuple[int, str, str]:
    lowered = cause.lower()
    if any(word in lowered for word in _CONTEXT_FULL):
        return 400, "invalid_request", f"prompt is too long ({message})"
    if any(word in lowered for word in _NO_SUCH_MODEL):
        return 404, "not_found", message
    if any(word in lowered for word in _RATE_LIMITED):
        return 429, "rate_limit", message
    return status, kind, message

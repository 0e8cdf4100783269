"""Logging: plain text or JSON lines, one access line per request, and bodies at debug.

The access line carries the time, request id, client dialect, backend, the model asked
and the model sent, status, time to first byte, total time, tokens in and out, and stop
reason: in JSON mode as fields, in text mode as ``key=value``. Request and response
bodies are logged only at DEBUG, cut to LOG_BODY_MAX_CHARS, and every key or token in
them is masked first (``proxy.redaction.Masker``), so no secret reaches a log line.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from typing import Any

import orjson

from proxy.config import Settings
from proxy.observe.trace import Trace
from proxy.redaction import Masker

access_log = logging.getLogger("proxy.access")
body_log = logging.getLogger("proxy.body")


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {"time": self.formatTime(record), "level": record.levelname,
                                "logger": record.name,
                                "message": escape_controls(record.getMessage())}
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line).decode()


def formatter(log_format: str) -> logging.Formatter:
    """The formatter of LOG_FORMAT: ``json`` or ``text``."""
    if log_format == "json":
        return JSONFormatter()
    return TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")


def escape_controls(text: str) -> str:
    """Text that stays on its own log line: control characters (line breaks first),
    Unicode's line separators and bidi overrides, written as visible escapes (``\\n``,
    ``\\x00``, ``\\u2028``). Model names, paths, stop reasons and bodies come from clients
    and upstreams, and must not be able to write a line of their own."""
    return _CONTROLS.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message``, the message escaped (a traceback, when there is
    one, still follows on lines of its own)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape_controls(record.message)
        return super().formatMessage(record)


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(settings.log_format))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    # The logging manual's own speed-ups: no caller lookup, thread or process names per
    # record (none of them is in the format); the access line is written once a request.
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False


def access_fields(trace: Trace) -> dict[str, Any]:
    """The access line's fields, every string among them escaped (``escape_controls``)."""
    usage = trace.usage
    fields = {"request_id": trace.request_id, "method": trace.method, "path": trace.path,
              "status": trace.status, "dialect": trace.dialect, "backend": trace.backend,
              "model_asked": trace.model_asked, "model_sent": trace.model_sent,
              "ttfb_ms": _ms(trace.ttfb_ms), "total_ms": _ms(trace.total_ms),
              "tokens_in": usage.input_tokens + usage.cache_read_input_tokens if usage else None,
              "tokens_out": usage.output_tokens if usage else None,
              "stop_reason": trace.stop_reason, "attempts": trace.attempts,
              "key": trace.key_name, "dropped": trace.dropped,
              "worker": os.getpid()}
    return {k: escape_controls(v) if isinstance(v, str) else v for k, v in fields.items()}


def log_access(trace: Trace) -> None:
    if not access_log.isEnabledFor(logging.INFO):
        return
    fields = access_fields(trace)
    text = " ".join(f"{k}={'-' if v is None else v}" for k, v in fields.items()
                    if k not in ("request_id", "method", "path", "status"))
    access_log.info("%s %s %s %s %s", fields["request_id"], fields["method"], fields["path"],
                    fields["status"], text, extra={"fields": fields})


def log_body(what: str, trace: Trace, body: bytes | str, settings: Settings,
             masker: Masker, limit: int | None = None) -> None:
    """At DEBUG only: a body, masked, cut to LOG_BODY_MAX_CHARS (0: never), or to
    ``limit`` (a streamed answer's preview: LOG_STREAM_TEXT_PREVIEW_CHARS)."""
    limit = settings.log_body_max_chars if limit is None else limit
    if limit <= 0 or not body_log.isEnabledFor(logging.DEBUG):
        return
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    cut = escape_controls(masker(text[: limit + 200])[:limit])
    more = f" …(+{len(text) - limit} chars)" if len(text) > limit else ""
    body_log.debug("%s %s: %s%s", trace.request_id, what, cut, more,
                   extra={"fields": {"request_id": trace.request_id, "body": what}})


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 2)

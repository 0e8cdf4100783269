"""One request's facts, written by whichever layer learns them and read by the access
line, the metrics and the session log. Sans-I/O.

Two response headers say where the time to the response head went, in milliseconds:

- ``x-llm-proxy-upstream-ms``: the time spent in upstream attempts. An attempt runs from
  the moment the proxy begins it (``attempt``: before the upstream request is rendered)
  to its failure (the start of the next attempt) or, for the attempt that answered, to
  ``answered``: its first content event decoded (a stream), its response head (a relay),
  or its whole answer (non-streaming).
- ``x-llm-proxy-overhead-ms``: the rest, from the request's arrival to the moment the
  response head is built: reading and parsing the client's body, routing, and the work
  after the upstream answered.

Both add up to the proxy's time to its response head (the head leaves with the first body
bytes). The proxy's own work inside an attempt (rendering the upstream request, reading
and decoding the upstream's first read, which holds many chunks when the upstream is
fast) counts as upstream time: the backends mark no finer points. So with a fast upstream
and a large request the overhead header is a lower bound of what the proxy added, the
upstream one an upper bound of what the upstream took."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from proxy.canonical import Usage

OVERHEAD_HEADER = "x-llm-proxy-overhead-ms"  # the proxy's time outside upstream attempts
UPSTREAM_HEADER = "x-llm-proxy-upstream-ms"  # the time in upstream attempts (see above)
RECORD_LIMIT = 1024 * 1024  # the most of an answer kept for a session log or DEBUG line


@dataclass(slots=True)
class Trace:
    request_id: str
    method: str = ""
    path: str = ""
    route: str = "other"  # the matched route, a bounded label (paths are the client's)
    dialect: str = ""
    started: float = field(default_factory=time.perf_counter)
    model_asked: str = "-"
    model_sent: str = "-"
    model_label: str = "other"  # a bounded name for metrics
    backend: str = "-"  # the provider that answered (or the last one tried)
    key_name: str = "-"  # the inbound key's name (never the key), a bounded label
    dropped: str = "-"  # request fields left out on purpose (translated requests)
    attempts: int = 0
    status: int = 0
    ttfb_ms: float | None = None
    total_ms: float | None = None
    upstream_started: float | None = None  # when the latest attempt began
    upstream_first: float | None = None  # when it answered (see the module's docstring)
    upstream_spent: float = 0.0  # seconds in the attempts that failed before it
    stop_reason: str = "-"
    usage: Usage | None = None
    errors: list[str] = field(default_factory=list)  # kinds of upstream failures met
    streamed: bool = False
    finished: bool = False  # the client has the whole answer (a later cancel is no 499)
    recording: bytearray | None = None  # the answer as sent, when a session log or DEBUG wants it
    request_body: bytes = b""
    upstream_recording: bytearray | None = None  # what a backend read (a CLI's lines)
    clock: Callable[[], float] = time.perf_counter  # for `started`'s timeline

    def record(self, data: bytes) -> None:
        if self.recording is not None and len(self.recording) < RECORD_LIMIT:
            self.recording += data[: RECORD_LIMIT - len(self.recording)]

    def record_upstream(self, data: bytes) -> None:
        """What the upstream sent, as it came, for the session log (cut at RECORD_LIMIT)."""
        if self.upstream_recording is None:
            self.upstream_recording = bytearray()
        if len(self.upstream_recording) < RECORD_LIMIT:
            self.upstream_recording += data[: RECORD_LIMIT - len(self.upstream_recording)]

    def attempt(self, backend: str, model: str, label: str = "other") -> None:
        now = self.clock()
        if self.upstream_started is not None and self.upstream_first is None:
            self.upstream_spent += now - self.upstream_started  # the attempt before failed
        self.backend, self.model_sent, self.model_label = backend, model, label
        self.attempts += 1
        self.upstream_started, self.upstream_first = now, None

    def answered(self) -> None:
        self.upstream_first = self.clock()

    def upstream_ms(self) -> float:
        """The time in upstream attempts so far (an unanswered one: up to now)."""
        return self._upstream(self.clock()) * 1000

    def overhead_ms(self) -> float:
        """The proxy's time so far outside upstream attempts."""
        now = self.clock()
        return max((now - self.started - self._upstream(now)) * 1000, 0.0)

    def timing_headers(self) -> dict[str, str]:
        """The two headers, for a response head built now."""
        now = self.clock()
        upstream = self._upstream(now)
        overhead = max(now - self.started - upstream, 0.0)
        return {OVERHEAD_HEADER: f"{overhead * 1000:.2f}",
                UPSTREAM_HEADER: f"{upstream * 1000:.2f}"}

    def _upstream(self, now: float) -> float:
        spent = self.upstream_spent
        if self.upstream_started is not None:
            end = now if self.upstream_first is None else self.upstream_first
            spent += end - self.upstream_started
        return spent

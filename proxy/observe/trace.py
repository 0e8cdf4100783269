"""One request's facts, written by whichever layer learns them and read by the access
line, the metrics and the session log. Sans-I/O."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from proxy.canonical import Usage

OVERHEAD_HEADER = "x-llm-proxy-overhead-ms"  # what the proxy itself added, as LiteLLM's
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
    attempts: int = 0
    status: int = 0
    ttfb_ms: float | None = None
    total_ms: float | None = None
    upstream_started: float | None = None  # when the answering attempt began
    upstream_first: float | None = None  # when its first content (or headers) arrived
    stop_reason: str = "-"
    usage: Usage | None = None
    errors: list[str] = field(default_factory=list)  # kinds of upstream failures met
    streamed: bool = False
    finished: bool = False  # the client has the whole answer (a later cancel is no 499)
    recording: bytearray | None = None  # the answer as sent, when a session log or DEBUG wants it
    request_body: bytes = b""
    upstream_recording: bytearray | None = None  # what a backend read (a CLI's lines)

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
        self.backend, self.model_sent, self.model_label = backend, model, label
        self.attempts += 1
        self.upstream_started, self.upstream_first = time.perf_counter(), None

    def answered(self) -> None:
        self.upstream_first = time.perf_counter()

    def overhead_ms(self) -> float:
        """What the proxy itself added so far: the time since the request came, minus the
        time spent waiting for the upstream's first answer."""
        elapsed = time.perf_counter() - self.started
        if self.upstream_started is not None and self.upstream_first is not None:
            elapsed -= self.upstream_first - self.upstream_started
        return max(elapsed * 1000, 0.0)

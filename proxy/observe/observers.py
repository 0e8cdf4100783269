"""What happens to a finished request's trace: the access line, the metrics, the session
log, and the DEBUG body lines. Built once per app."""

from __future__ import annotations

import asyncio
import logging

from proxy.config import Settings
from proxy.observe.logs import log_access, log_body
from proxy.observe.metrics import Metrics
from proxy.observe.session_log import SessionLog
from proxy.observe.trace import RECORD_LIMIT, Trace
from proxy.redaction import Masker

log = logging.getLogger("proxy")
MAX_PENDING_WRITES = 256


class Observers:
    def __init__(self, settings: Settings, secrets: tuple[str, ...]) -> None:
        self.settings = settings
        self.masker = Masker(secrets)
        self.metrics = Metrics()
        folder = settings.session_log_dir
        self.session_log = SessionLog(folder, self.masker) if folder else None
        self._writes: set[asyncio.Task[None]] = set()

    def done(self, trace: Trace) -> None:
        log_access(trace)
        self.metrics.observe(trace)
        if trace.recording is not None:
            preview = self.settings.log_stream_text_preview_chars if trace.streamed else None
            log_body("response", trace, bytes(trace.recording), self.settings, self.masker,
                     limit=preview)
        if self.session_log is not None:
            if len(self._writes) >= MAX_PENDING_WRITES:  # a slow disk must not hoard memory
                log.warning("session log behind: %s not written", trace.request_id)
                return
            task = asyncio.get_running_loop().create_task(self.session_log.write(trace),
                                                          name="session-log")
            self._writes.add(task)  # held until written, so it is not collected mid-way
            task.add_done_callback(self._written)

    def request_body(self, trace: Trace, raw: bytes) -> None:
        if self.session_log is not None:
            trace.request_body = raw[:RECORD_LIMIT]
        log_body("request", trace, raw, self.settings, self.masker)

    def _written(self, task: asyncio.Task[None]) -> None:
        self._writes.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("session log not written: %s", task.exception())

    async def close(self) -> None:
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)

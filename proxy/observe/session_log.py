"""An optional session log: one JSON file per request in SESSION_LOG_DIR, as claudebridge
keeps, with the request, the response as the client got it (cut at 1 MiB), what a CLI
backend said (its stream-json lines), the route and the timings. Keys are masked; the
file is written off the event loop, after the answer."""

from __future__ import annotations

import asyncio
import secrets
import time
from pathlib import Path
from typing import Any

import orjson

from proxy.observe.logs import access_fields
from proxy.observe.trace import Trace
from proxy.redaction import Masker


class SessionLog:
    def __init__(self, folder: str, masker: Masker) -> None:
        self._folder = Path(folder)
        self._folder.mkdir(parents=True, exist_ok=True)
        self._mask = masker

    async def write(self, trace: Trace) -> None:
        """Masking and writing happen off the event loop: bodies can be megabytes."""
        fields = access_fields(trace)
        request, response = trace.request_body, bytes(trace.recording or b"")
        upstream = bytes(trace.upstream_recording or b"")
        name = f"{time.strftime('%Y%m%d-%H%M%S')}-{trace.request_id}-{secrets.token_hex(3)}"
        await asyncio.get_running_loop().run_in_executor(
            None, self._write, self._folder / f"{name}.json", fields, request, response,
            upstream)

    def _write(self, path: Path, fields: dict[str, Any], request: bytes,
               response: bytes, upstream: bytes) -> None:
        record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **fields,
                  "request": self._mask(request.decode("utf-8", "replace")),
                  "response": self._mask(response.decode("utf-8", "replace"))}
        if upstream:  # a CLI backend's stream-json lines, as claudebridge logged them
            record["upstream"] = self._mask(upstream.decode("utf-8", "replace"))
        path.write_bytes(orjson.dumps(record, option=orjson.OPT_INDENT_2))

"""An optional session log: one JSON file per request in SESSION_LOG_DIR, as claudebridge
keeps, with the request, the response as the client got it (cut at 1 MiB), the route and
the timings. Keys are masked; the file is written off the event loop, after the answer."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import orjson

from proxy.observe.logs import Masker, access_fields
from proxy.observe.trace import Trace


class SessionLog:
    def __init__(self, folder: str, masker: Masker) -> None:
        self._folder = Path(folder)
        self._folder.mkdir(parents=True, exist_ok=True)
        self._mask = masker

    async def write(self, trace: Trace) -> None:
        record: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **access_fields(trace),
            "request": self._mask(trace.request_body.decode("utf-8", "replace")),
            "response": self._mask(bytes(trace.recording or b"").decode("utf-8", "replace")),
        }
        path = self._folder / f"{time.strftime('%Y%m%d-%H%M%S')}-{trace.request_id}.json"
        data = orjson.dumps(record, option=orjson.OPT_INDENT_2)
        await asyncio.get_running_loop().run_in_executor(None, path.write_bytes, data)

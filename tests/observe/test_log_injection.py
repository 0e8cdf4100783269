"""No client (nor upstream) can write a line into the log: a model name or a path with a
newline in it stays on its request's one access line, in text and in JSON, and DEBUG
bodies carry no raw control bytes."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import aiohttp
import anthropic
import pytest

from proxy.observe.logs import escape_controls, formatter
from tests.fakes.openai_upstream import FakeOpenAIUpstream, Stream, text_stream

FORGED = "x\n2026-12-07 02:16:23,000 INFO proxy.access: req_FAKE POST /v1/messages 200 FORGED"


@pytest.fixture(params=["text", "json"])
def log_lines(request: pytest.FixtureRequest) -> Iterator[io.StringIO]:
    """Everything the proxy logs, formatted as ``python -m proxy`` formats it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter(request.param))
    root = logging.getLogger("proxy")  # the proxy's own loggers, not the SDK's
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    stream.format = request.param  # type: ignore[attr-defined]
    yield stream
    root.removeHandler(handler)
    root.setLevel(old_level)


RECORD = re.compile(r"\d{4}-\d\d-\d\d [\d:,]+ (?P<level>[A-Z]+) (?P<logger>[\w.]+): ")


def records(stream: io.StringIO) -> list[tuple[str, str]]:
    """(logger, line) for every line written (in JSON: the message); each line must be a
    whole record of its own."""
    out = []
    for line in stream.getvalue().splitlines():
        if stream.format == "json":  # type: ignore[attr-defined]
            record = json.loads(line)
            out.append((record["logger"], record["message"]))
        else:
            match = RECORD.match(line)
            assert match, f"a line that is not a log record: {line!r}"
            out.append((match["logger"], line))
    return out


def access_lines(stream: io.StringIO) -> list[str]:
    return [line for logger, line in records(stream) if logger == "proxy.access"]


async def settle() -> None:
    for _ in range(20):  # the access line is written as the handler ends
        await asyncio.sleep(0.01)


async def test_a_model_name_with_a_newline_writes_one_access_line(
        upstream: FakeOpenAIUpstream, start_proxy: Any, log_lines: io.StringIO) -> None:
    url = await start_proxy(upstream_url=upstream.base_url)  # type: ignore[attr-defined]
    upstream.scenario = Stream(text_stream(["fine"]))
    async with anthropic.AsyncAnthropic(base_url=url, api_key="k", max_retries=0) as api:
        await api.messages.create(model=FORGED, max_tokens=5,
                                  messages=[{"role": "user", "content": "hi"}])
    await settle()
    (access,) = access_lines(log_lines)
    assert "req_FAKE" in access and "\\n2026" in access


async def test_a_path_with_a_newline_writes_one_access_line(
        proxy_url: str, log_lines: io.StringIO) -> None:
    async with aiohttp.ClientSession() as session, session.get(
            proxy_url + "/v1/models%0A2026-12-07%20INFO%20proxy.access:%20FORGED%00") as r:
        assert r.status == 404
    await settle()
    (access,) = access_lines(log_lines)
    assert "FORGED" in access and "\\n2026" in access and "\\x00" in access


async def test_debug_bodies_carry_no_raw_control_bytes(
        upstream: FakeOpenAIUpstream, start_proxy: Any, log_lines: io.StringIO) -> None:
    url = await start_proxy(upstream_url=upstream.base_url)  # type: ignore[attr-defined]
    upstream.scenario = Stream(text_stream(["two\nlines"]))
    async with aiohttp.ClientSession() as session, session.post(
            url + "/v1/messages", headers={"x-api-key": "k"},
            data=b'{"model": "m", "max_tokens": 5, "stream": true, "messages": '
                 b'[{"role": "user", "content": "a\x00b\x1b[2J\rc"}]}') as r:
        await r.read()
    await settle()
    bodies = [line for logger, line in records(log_lines) if logger == "proxy.body"]
    assert len(bodies) == 2, records(log_lines)  # the request and the response
    for line in bodies:
        assert not any(ord(c) < 0x20 or 0x7f <= ord(c) < 0xa0 for c in line), line


def test_escape_controls() -> None:
    assert escape_controls("plain words, ünïcode ✓") == "plain words, ünïcode ✓"
    assert escape_controls("a\nb\r\tc\x00d\x1b\x7f\x85\u2028\u202e") == (
        "a\\nb\\r\\tc\\x00d\\x1b\\x7f\\x85\\u2028\\u202e")

"""Access lines (text and JSON), DEBUG bodies masked and cut, the session log, headers."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Any

import aiohttp
import anthropic
import pytest

from proxy.observe.logs import JSONFormatter, access_fields, log_access
from proxy.observe.trace import OVERHEAD_HEADER, Trace
from proxy.redaction import Masker
from tests.fakes.openai_upstream import FakeOpenAIUpstream, Stream, text_stream

HELLO = [{"role": "user", "content": "hi"}]
SECRET = "sk-upstream-0123456789"


def test_masker_hides_known_and_key_shaped_secrets() -> None:
    mask = Masker(["my-own-proxy-key"])
    text = ('{"x-api-key": "abc12345", "note": "Bearer tok_abcdef123", "k": "sk-ant-api03-XYZ123",'
            ' "p": "my-own-proxy-key", "ok": "plain words"}')
    masked = mask(text)
    for secret in ("abc12345", "tok_abcdef123", "sk-ant-api03-XYZ123", "my-own-proxy-key"):
        assert secret not in masked
    assert "plain words" in masked


def test_the_access_line_in_text_and_json() -> None:
    trace = Trace(request_id="req_1", method="POST", path="/v1/messages", dialect="anthropic",
                  model_asked="claude-x", model_sent="deepseek-chat", backend="ds", status=200,
                  ttfb_ms=12.345, total_ms=99.9, stop_reason="end_turn")
    fields = access_fields(trace)
    assert fields["model_sent"] == "deepseek-chat" and fields["ttfb_ms"] == 12.35
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JSONFormatter())
    logger = logging.getLogger("proxy.access")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        log_access(trace)
    finally:
        logger.removeHandler(handler)
    line = json.loads(stream.getvalue())
    assert line["request_id"] == "req_1" and line["backend"] == "ds"
    assert line["status"] == 200 and line["stop_reason"] == "end_turn"
    assert "model_asked=claude-x" in line["message"]


async def test_debug_bodies_are_masked_and_cut(upstream: FakeOpenAIUpstream, start_proxy: Any,
                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="proxy.body")
    url = await start_proxy(upstream_url=upstream.base_url, upstream_api_key=SECRET,  # type: ignore[attr-defined]
                            log_body_max_chars=300)
    upstream.scenario = Stream(text_stream(["fine"]))
    leaky = [{"role": "user", "content": f"my key is {SECRET} and sk-other-abcdefgh " + "x" * 900}]
    async with anthropic.AsyncAnthropic(base_url=url, api_key="client-key", max_retries=0) as api:
        await api.messages.create(model="m", max_tokens=5, messages=leaky)  # type: ignore[arg-type]
    bodies = [r.getMessage() for r in caplog.records if r.name == "proxy.body"]
    assert len(bodies) == 2  # the request and the response
    assert "***" in bodies[0] and SECRET not in bodies[0] and "sk-other" not in bodies[0]
    assert "chars)" in bodies[0] and len(bodies[0]) < 450  # cut to LOG_BODY_MAX_CHARS
    assert '"fine"' in bodies[1] or "fine" in bodies[1]


async def test_no_bodies_at_info(upstream: FakeOpenAIUpstream, proxy_url: str,
                                 caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with anthropic.AsyncAnthropic(base_url=proxy_url, api_key="k", max_retries=0) as api:
        await api.messages.create(model="m", max_tokens=5, messages=HELLO)  # type: ignore[arg-type]
    assert not [r for r in caplog.records if r.name == "proxy.body"]
    access = [r for r in caplog.records if r.name == "proxy.access"]
    assert len(access) == 1 and "model_sent=upstream-model" in access[0].getMessage()


async def test_session_log_files(upstream: FakeOpenAIUpstream, start_proxy: Any,
                                 tmp_path: Path) -> None:
    folder = tmp_path / "sessions"
    url = await start_proxy(upstream_url=upstream.base_url, upstream_api_key=SECRET,  # type: ignore[attr-defined]
                            session_log_dir=str(folder))
    upstream.scenario = Stream(text_stream(["logged", " answer"]))
    async with anthropic.AsyncAnthropic(base_url=url, api_key="client-key", max_retries=0) as api, \
            api.messages.stream(model="m", max_tokens=5, messages=[
                {"role": "user", "content": f"secret {SECRET}"}]) as s:  # type: ignore[arg-type]
        await s.get_final_message()
    await _settle()
    files = list(folder.glob("*.json"))
    assert len(files) == 1
    record = json.loads(files[0].read_text())
    assert record["status"] == 200 and record["model_sent"] == "m"
    assert "secret ***" in record["request"] and SECRET not in files[0].read_text()
    assert "event: message_stop" in record["response"] and "logged" in record["response"]
    assert record["ttfb_ms"] is not None and record["total_ms"] >= record["ttfb_ms"]


async def test_every_response_has_a_request_id_and_the_overhead(
        upstream: FakeOpenAIUpstream, proxy_url: str) -> None:
    async with aiohttp.ClientSession() as session:
        for stream in (False, True):
            async with session.post(proxy_url + "/v1/messages", json={
                    "model": "m", "max_tokens": 5, "messages": HELLO, "stream": stream}) as r:
                await r.read()
                assert r.headers["x-request-id"].startswith("req_")
                assert float(r.headers[OVERHEAD_HEADER]) >= 0
        async with session.get(proxy_url + "/nope") as r:
            assert "x-request-id" in r.headers


async def _settle() -> None:
    import asyncio

    for _ in range(50):
        await asyncio.sleep(0.01)



async def test_a_streamed_answer_is_previewed_to_its_own_limit(
        upstream: FakeOpenAIUpstream, start_proxy: Any,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="proxy.body")
    url = await start_proxy(upstream_url=upstream.base_url,  # type: ignore[attr-defined]
                            log_body_max_chars=5000, log_stream_text_preview_chars=120)
    upstream.scenario = Stream(text_stream(["word "] * 100))
    async with anthropic.AsyncAnthropic(base_url=url, api_key="k", max_retries=0) as api, \
            api.messages.stream(model="m", max_tokens=5, messages=HELLO) as s:  # type: ignore[arg-type]
        await s.get_final_message()
    await _settle()  # the line is written when the handler ends, after the client's last byte
    response = [r.getMessage() for r in caplog.records
                if r.name == "proxy.body" and " response: " in r.getMessage()]
    assert len(response) == 1 and "chars)" in response[0] and len(response[0]) < 260

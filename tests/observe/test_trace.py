"""The timing headers: x-llm-proxy-overhead-ms and x-llm-proxy-upstream-ms add up to the
proxy's time to its response head, the upstream one counting every attempt."""

from __future__ import annotations

import time

import aiohttp

from proxy.observe.trace import OVERHEAD_HEADER, UPSTREAM_HEADER, Trace
from tests.fakes.openai_upstream import FakeOpenAIUpstream, Stream, text_stream


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def at(self, ms: float) -> None:
        self.now = ms / 1000


def headers(trace: Trace) -> tuple[float, float]:
    got = trace.timing_headers()
    return float(got[OVERHEAD_HEADER]), float(got[UPSTREAM_HEADER])


def test_without_an_attempt_everything_is_the_proxy_s() -> None:
    clock = Clock()
    trace = Trace("req_1", started=0.0, clock=clock)
    clock.at(3)
    assert headers(trace) == (3.0, 0.0)


def test_the_answering_attempt_is_the_upstream_s_up_to_its_answer() -> None:
    clock = Clock()
    trace = Trace("req_1", started=0.0, clock=clock)
    clock.at(1)  # parsed and routed
    trace.attempt("p", "m")
    clock.at(41)
    assert headers(trace) == (1.0, 40.0)  # still waiting: up to now
    clock.at(51)
    trace.answered()
    clock.at(52.5)  # the head is built
    assert headers(trace) == (2.5, 50.0)
    assert round(trace.overhead_ms(), 6) == 2.5 and round(trace.upstream_ms(), 6) == 50.0


def test_failed_attempts_count_as_upstream_time_too() -> None:
    clock = Clock()
    trace = Trace("req_1", started=0.0, clock=clock)
    clock.at(1)
    trace.attempt("first", "m")
    clock.at(11)  # it failed (a 429, say); the next one begins
    trace.attempt("second", "m")
    clock.at(61)
    trace.answered()
    clock.at(62)
    assert headers(trace) == (2.0, 60.0)
    assert trace.attempts == 2 and trace.backend == "second"


async def test_the_headers_add_up_to_the_time_to_the_head(
        upstream: FakeOpenAIUpstream, proxy_url: str) -> None:
    """The upstream waits `delay` before its first text: all of it is upstream time, and
    both headers together are at most what the client waited for the head."""
    delay = 0.2
    upstream.scenario = Stream(text_stream(["one", " two"]), delay=delay)
    body = {"model": "m", "max_tokens": 5, "stream": True,
            "messages": [{"role": "user", "content": "hi"}]}
    async with aiohttp.ClientSession() as session:
        for path in ("/v1/messages", "/v1/chat/completions"):  # translated, then relayed
            start = time.perf_counter()
            async with session.post(proxy_url + path, json=body) as r:
                waited = (time.perf_counter() - start) * 1000
                overhead, spent = float(r.headers[OVERHEAD_HEADER]), float(r.headers[UPSTREAM_HEADER])
                await r.read()
            assert r.status == 200
            assert overhead >= 0 and overhead + spent <= waited
            if path == "/v1/messages":  # committed at the first text, `delay` after the role
                assert spent >= delay * 1000
        async with session.get(proxy_url + "/health") as r:
            assert float(r.headers[UPSTREAM_HEADER]) == 0.0

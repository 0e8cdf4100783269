"""GET /metrics moves with the traffic; with several processes the figures add up."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import aiohttp
import anthropic
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes.openai_upstream import (
    ErrorResponse,
    FakeOpenAIUpstream,
    Stream,
    error_body,
    text_stream,
)

HELLO = [{"role": "user", "content": "hi"}]


async def scrape(url: str) -> dict[str, float]:
    async with aiohttp.ClientSession() as session, session.get(url + "/metrics") as response:
        assert response.status == 200
        assert response.headers["content-type"].startswith("text/plain")
        text = await response.text()
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


def total(samples: dict[str, float], prefix: str, *needles: str) -> float:
    return sum(v for k, v in samples.items()
               if k.startswith(prefix + "{") and all(n in k for n in needles))


async def test_metrics_move_after_requests(upstream: FakeOpenAIUpstream,
                                           proxy_url: str) -> None:
    before = await scrape(proxy_url)
    assert total(before, "llm_proxy_requests_total") == 0
    upstream.scenario = Stream(text_stream(["a", "b"], usage=(30, 4, 10)))
    async with anthropic.AsyncAnthropic(base_url=proxy_url, api_key="k", max_retries=0) as api:
        for _ in range(3):
            async with api.messages.stream(model="m", max_tokens=5, messages=HELLO) as s:  # type: ignore[arg-type]
                await s.get_final_message()
        upstream.scenario = ErrorResponse(503, error_body("busy"))
        try:
            await api.messages.create(model="m", max_tokens=5, messages=HELLO)  # type: ignore[arg-type]
        except anthropic.APIStatusError:
            pass
    after = await scrape(proxy_url)
    assert total(after, "llm_proxy_requests_total", "status=200", "route=/v1/messages") == 3
    assert total(after, "llm_proxy_requests_total", "status=529") == 1
    assert total(after, "llm_proxy_time_to_first_byte_seconds_count") == 3
    assert total(after, "llm_proxy_request_seconds_count", "route=/v1/messages") == 4
    assert total(after, "llm_proxy_tokens_total", "direction=in") == 3 * 30
    assert total(after, "llm_proxy_tokens_total", "direction=out") == 3 * 4
    assert total(after, "llm_proxy_upstream_errors_total", "kind=overloaded") == 1
    assert total(after, "llm_proxy_active_streams") == 0


def test_figures_add_up_across_processes(tmp_path: Path) -> None:
    """The library's multiprocess mode: two processes observe, a third renders the sum."""
    folder = tmp_path / "prom"
    folder.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    observe = textwrap.dedent("""
        from proxy.observe.metrics import Metrics
        from proxy.observe.trace import Trace
        m = Metrics()
        m.observe(Trace(request_id="r", path="/v1/messages", backend="b", model_sent="x",
                        status=200, total_ms=5.0))
    """)
    for _ in range(2):
        subprocess.run([sys.executable, "-c", observe], env=env, check=True, timeout=60)
    render = "from proxy.observe.metrics import Metrics; print(Metrics().render().decode())"
    out = subprocess.run([sys.executable, "-c", render], env=env, check=True, timeout=60,
                         capture_output=True, text=True).stdout
    requests = [line for line in out.splitlines()
                if line.startswith("llm_proxy_requests_total{")]
    assert requests and float(requests[0].rsplit(" ", 1)[1]) == 2.0



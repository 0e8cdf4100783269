"""Prometheus metrics through ``prometheus-client``: requests, latencies, streams, errors,
tokens; ``GET /metrics`` in the text format.

With several workers, ``PROMETHEUS_MULTIPROC_DIR`` (set by the supervisor) makes every
process write its figures to files there, and ``/metrics`` on any worker adds them up
(the library's multiprocess mode); the active-streams gauge is summed over live workers.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from proxy.observe.trace import Trace

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class Metrics:
    """The proxy's instruments, on a registry of their own (no module-level state)."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self._multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        registry = None if self._multiprocess else CollectorRegistry()
        self._registry = registry
        self.requests = Counter(
            "llm_proxy_requests",
            "Requests answered",
            ["route", "backend", "model", "status", "key"],
            registry=registry,
        )
        self.ttfb = Histogram(
            "llm_proxy_time_to_first_byte_seconds",
            "Time to the first byte sent to the client",
            ["route", "backend"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.total = Histogram(
            "llm_proxy_request_seconds",
            "Time to the last byte",
            ["route", "backend"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.active_streams = Gauge(
            "llm_proxy_active_streams",
            "Streams being written now",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.upstream_errors = Counter(
            "llm_proxy_upstream_errors",
            "Upstream failures, by kind",
            ["backend", "kind"],
            registry=registry,
        )
        self.tokens = Counter(
            "llm_proxy_tokens",
            "Tokens in and out, as upstreams report them",
            ["backend", "model", "direction"],
            registry=registry,
        )

    def observe(self, trace: Trace) -> None:
        route, backend = trace.route, trace.backend
        self.requests.labels(route, backend, trace.model_label, str(trace.status),
                             trace.key_name).inc()
        if trace.ttfb_ms is not None:
            self.ttfb.labels(route, backend).observe(trace.ttfb_ms / 1000)
        if trace.total_ms is not None:
            self.total.labels(route, backend).observe(trace.total_ms / 1000)
        for kind in trace.errors:
            self.upstream_errors.labels(backend, kind).inc()
        if trace.usage is not None:
            usage = trace.usage
            self.tokens.labels(backend, trace.model_label, "in").inc(
                usage.input_tokens + usage.cache_read_input_tokens
            )
            self.tokens.labels(backend, trace.model_label, "out").inc(usage.output_tokens)

    def render(self) -> bytes:
        if not self._multiprocess:
            assert self._registry is not None
            return generate_latest(self._registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)

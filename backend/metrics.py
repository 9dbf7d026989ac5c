"""Prometheus metrics, held in a registry owned by the running app (no global registry).

Components get the :class:`Metrics` object from the composition root and register their own
counters/gauges on ``metrics.registry``; ``GET /v1/metrics`` renders the text format.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.http_requests = Counter(
            "docsidecar_http_requests_total",
            "HTTP requests served, by route template, method and status code.",
            ("route", "method", "status"),
            registry=self.registry,
        )
        self.http_latency = Histogram(
            "docsidecar_http_request_duration_seconds",
            "Time from request start to the end of the response body, by route template, method and status.",
            ("route", "method", "status"),
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.info = Gauge(
            "docsidecar_info",
            "Constant 1, labelled with the version.",
            ("version",),
            registry=self.registry,
        )

    def gauge_callback(self, name: str, doc: str, fn: Callable[[], float]) -> Gauge:
        """A gauge whose value is read from ``fn`` at scrape time (queue depths, counts)."""
        gauge = Gauge(name, doc, registry=self.registry)
        gauge.set_function(fn)
        return gauge

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.http_requests.labels(route, method, str(status)).inc()
        self.http_latency.labels(route, method, str(status)).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)

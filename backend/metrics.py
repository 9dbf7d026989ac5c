"""Prometheus metrics, held in a registry owned by the running app (no global registry).

The composition root (:mod:`backend.services`) creates one :class:`Metrics` and hands each
component the narrow piece it reports to — a bound method as a callback, or ``metrics`` itself
where a component takes a small observer protocol (the store's
:class:`~backend.store.busy.BusyObserver`). Values that are *states* (queue depths, sync lag)
are read from the components at scrape time by :class:`ScrapeGauges` collectors
(:mod:`backend.metrics_wiring`); ``GET /v1/metrics`` renders the text format. README
("Maintenance and troubleshooting") says what each metric means and what to do about it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

CONTENT_TYPE = CONTENT_TYPE_LATEST

log = logging.getLogger(__name__)

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_EMBED_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_WAIT_BUCKETS = (0.0001, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_SYNC_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)

Readings = Mapping[tuple[str, ...], float]
"""One gauge's values by label values (``()`` for an unlabelled gauge)."""


@dataclass(frozen=True, slots=True)
class GaugeSpec:
    name: str
    doc: str
    labels: tuple[str, ...] = ()


class ScrapeGauges(Collector):
    """Gauge families whose values one ``read()`` returns at scrape time, by family name. A
    family missing from the reading has no samples (the value does not exist now: sync not
    configured); a reading that raises (the store is stopping) leaves every family empty
    instead of failing the whole scrape."""

    def __init__(self, specs: Sequence[GaugeSpec], read: Callable[[], Mapping[str, Readings]]) -> None:
        self.specs, self.read = tuple(specs), read

    def _families(self) -> list[GaugeMetricFamily]:
        return [GaugeMetricFamily(s.name, s.doc, labels=s.labels) for s in self.specs]

    def describe(self) -> Iterator[Metric]:  # registration must not call read()
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        try:
            readings = self.read()
        except Exception as exc:  # noqa: BLE001 - a metric must never break the scrape
            log.debug("metrics %s not readable now: %s", [s.name for s in self.specs], exc)
            readings = {}
        for family in self._families():
            for label_values, value in readings.get(family.name, {}).items():
                family.add_metric(list(label_values), float(value))
            yield family


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_requests = Counter(
            "docsidecar_http_requests_total",
            "HTTP requests served, by route template, method and status code.",
            ("route", "method", "status"),
            registry=r,
        )
        self.http_latency = Histogram(
            "docsidecar_http_request_duration_seconds",
            "Time from request start to the end of the response body, by route template, method and status.",
            ("route", "method", "status"),
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.info = Gauge("docsidecar_info", "Constant 1, labelled with the version.", ("version",), registry=r)
        # -- embedding (backend/embed/onnx_embedder.py) -----------------------------------------
        self.embed_batch = Histogram(
            "docsidecar_embed_batch_duration_seconds",
            "Time of one model run (one batch), by model and lane (query = a search, bulk = ingest/backfill/re-embed).",
            ("model", "lane"),
            buckets=_EMBED_BUCKETS,
            registry=r,
        )
        self.embed_texts = Counter(
            "docsidecar_embed_texts_total", "Texts run through the model, by model and lane.", ("model", "lane"),
            registry=r,
        )  # fmt: skip
        self.embed_tokens = Counter(
            "docsidecar_embed_tokens_total",
            "Tokens run through the model (after truncation, padding excluded), by model and lane.",
            ("model", "lane"),
            registry=r,
        )
        # -- jobs (backend/ingest/worker.py) ----------------------------------------------------
        self.job_outcomes = Counter(
            "docsidecar_job_outcomes_total",
            "Job runs ended, by kind and outcome: done, retried (failed, runs again), failed (gave up), "
            "cancelled, deferred (put back without an attempt: model loading, disk full), interrupted (shutdown).",
            ("kind", "outcome"),
            registry=r,
        )
        # -- sync (sync/service.py) -------------------------------------------------------------
        self.sync_runs = Counter(
            "docsidecar_sync_runs_total",
            "Sync runs asked for, by outcome: ok, failed, cancelled, not_configured, signed_out.",
            ("outcome",),
            registry=r,
        )
        self.sync_failures = Counter(
            "docsidecar_sync_failures_total",
            "Failed sync runs by error class (transient, auth_expired, signed_out, permanent, schema_missing, "
            "not_found, exists, internal).",
            ("error_class",),
            registry=r,
        )
        self.sync_run_seconds = Histogram(
            "docsidecar_sync_run_duration_seconds", "Duration of sync runs that started, by outcome.", ("outcome",),
            buckets=_SYNC_BUCKETS, registry=r,
        )  # fmt: skip
        # -- SQLite (backend/store/busy.py, writer.py) ------------------------------------------
        self.sqlite_busy = Counter(
            "docsidecar_sqlite_busy_total",
            "Times a connection found the database locked by another connection (SQLITE_BUSY) and began to wait.",
            ("connection",),
            registry=r,
        )
        self.sqlite_busy_retries = Counter(
            "docsidecar_sqlite_busy_retries_total", "Retries after sleeping on a locked database.", ("connection",),
            registry=r,
        )  # fmt: skip
        self.sqlite_lock_wait = Histogram(
            "docsidecar_sqlite_lock_wait_seconds",
            "Time spent waiting for a lock another connection held, by connection and outcome "
            "(acquired, or timeout: the statement failed with SQLITE_BUSY).",
            ("connection", "outcome"),
            buckets=_WAIT_BUCKETS,
            registry=r,
        )
        self.write_queue_wait = Histogram(
            "docsidecar_store_write_queue_seconds",
            "Time a write waited for the single writer thread (queue + lock) before it ran.",
            buckets=_WAIT_BUCKETS,
            registry=r,
        )

        for role in ("writer", "reader"):  # shown as 0 before the first wait
            self.sqlite_busy.labels(role)
            self.sqlite_busy_retries.labels(role)
        for outcome in ("ok", "failed"):
            self.sync_runs.labels(outcome)

    # -- scrape-time readings -------------------------------------------------------------------
    def gauge_callback(self, name: str, doc: str, fn: Callable[[], float]) -> Gauge:
        """A gauge whose value is read from ``fn`` at scrape time (queue depths, counts)."""
        gauge = Gauge(name, doc, registry=self.registry)
        gauge.set_function(fn)
        return gauge

    def scrape_gauges(self, specs: Sequence[GaugeSpec], read: Callable[[], Mapping[str, Readings]]) -> ScrapeGauges:
        """Gauge families read together at scrape time (see :class:`ScrapeGauges`)."""
        collector = ScrapeGauges(specs, read)
        self.registry.register(collector)
        return collector

    # -- what components report -----------------------------------------------------------------
    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.http_requests.labels(route, method, str(status)).inc()
        self.http_latency.labels(route, method, str(status)).observe(seconds)

    def observe_embed(self, model: str, lane: str, texts: int, tokens: int, seconds: float) -> None:
        self.embed_batch.labels(model, lane).observe(seconds)
        self.embed_texts.labels(model, lane).inc(texts)
        self.embed_tokens.labels(model, lane).inc(tokens)

    def job_outcome(self, kind: str, outcome: str) -> None:
        self.job_outcomes.labels(kind, outcome).inc()

    def sync_run(self, outcome: str, error_class: str | None, seconds: float | None) -> None:
        self.sync_runs.labels(outcome).inc()
        if error_class is not None:
            self.sync_failures.labels(error_class).inc()
        if seconds is not None:
            self.sync_run_seconds.labels(outcome).observe(seconds)

    def busy_began(self, role: str) -> None:
        self.sqlite_busy.labels(role).inc()

    def busy_retried(self, role: str) -> None:
        self.sqlite_busy_retries.labels(role).inc()

    def busy_ended(self, role: str, outcome: str, seconds: float) -> None:
        self.sqlite_lock_wait.labels(role, outcome).observe(seconds)

    def write_queued(self, seconds: float) -> None:
        self.write_queue_wait.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)

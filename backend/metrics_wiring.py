"""Scrape-time gauges of the components' state (queue depths, sync lag), registered by the
composition root; each reads the components' public state when ``/v1/metrics`` is scraped."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from backend.ingest.worker import JobWorker
from backend.metrics import GaugeSpec, Metrics, Readings
from backend.watch.service import WatchService
from sync.service import SyncService

JOB_STATES = ("queued", "running")
WAIT_REASONS = ("paused", "disk_full", "prerequisite", "backoff")
WATCH_MODES = ("starting", "watching", "polling")

QUEUE_GAUGES = (
    GaugeSpec("docsidecar_jobs", "Jobs queued or running now, by kind.", ("kind", "state")),
    GaugeSpec(
        "docsidecar_jobs_waiting",
        "Queued jobs the worker does not run yet, by kind and reason: paused (ingest paused), disk_full, "
        "prerequisite (waiting for the embedding model), backoff (retry delay after a failure).",
        ("kind", "reason"),
    ),
    GaugeSpec("docsidecar_ingest_paused", "1 while ingest is paused (POST /v1/ingest/pause), else 0."),
    GaugeSpec("docsidecar_ingest_queue_limit", "Queued jobs at which new uploads, paths and reindexing get 429."),
    GaugeSpec("docsidecar_watch_deferred_files", "Files of watched folders left out until the ingest queue has room."),
    GaugeSpec("docsidecar_watched_folders", "Watched folders by mode (polling: no native watch).", ("mode",)),
)

SYNC_GAUGES = (
    GaugeSpec("docsidecar_sync_enabled", "1 while a Supabase session is configured, else 0."),
    GaugeSpec("docsidecar_sync_signed_in", "1 while the configured session is signed in (absent when not configured)."),
    GaugeSpec(
        "docsidecar_sync_last_success_age_seconds",
        "Seconds since the last successful sync run (absent when sync is not configured or never succeeded).",
    ),
    GaugeSpec("docsidecar_sync_pending_documents", "Documents with local changes not pushed yet."),
    GaugeSpec("docsidecar_sync_dead_letters", "Changes the server refused for good (GET /v1/sync/dead-letters)."),
    GaugeSpec("docsidecar_sync_conflicts", "Conflicted copies recorded (GET /v1/sync/conflicts)."),
    GaugeSpec("docsidecar_sync_circuit_open", "1 while failed runs have opened the circuit breaker (no runs), else 0."),
)


def register_queue_gauges(metrics: Metrics, worker: JobWorker, max_queued: int, watcher: WatchService) -> None:
    def read() -> Mapping[str, Readings]:
        kinds = sorted(worker.handlers)
        by_state: dict[tuple[str, ...], float] = {(k, s): 0 for k in kinds for s in JOB_STATES}
        waiting: dict[tuple[str, ...], float] = {(k, r): 0 for k in kinds for r in WAIT_REASONS}
        for (kind, where), n in worker.queue_depth().items():
            state = "running" if where == "running" else "queued"
            by_state[kind, state] = by_state.get((kind, state), 0) + n
            if where not in ("running", "ready"):
                waiting[kind, where] = waiting.get((kind, where), 0) + n
        folders = watcher.folder_states().values()
        return {
            "docsidecar_jobs": by_state,
            "docsidecar_jobs_waiting": waiting,
            "docsidecar_ingest_paused": {(): float(worker.paused)},
            "docsidecar_ingest_queue_limit": {(): max_queued},
            "docsidecar_watch_deferred_files": {(): sum(f["deferred"] for f in folders)},
            "docsidecar_watched_folders": {(m,): sum(f["mode"] == m for f in folders) for m in WATCH_MODES},
        }

    metrics.scrape_gauges(QUEUE_GAUGES, read)


def register_sync_gauges(metrics: Metrics, sync: SyncService) -> None:
    def read() -> Mapping[str, Readings]:
        status: dict[str, Any] = sync.sync_status()
        out: dict[str, Readings] = {"docsidecar_sync_enabled": {(): float(status["enabled"])}}
        if not status["enabled"]:
            return out  # no session: the other sync gauges do not exist
        out |= {
            "docsidecar_sync_signed_in": {(): float(status["signed_in"])},
            "docsidecar_sync_pending_documents": {(): status["pending"]},
            "docsidecar_sync_dead_letters": {(): status["dead_letters"]},
            "docsidecar_sync_conflicts": {(): status["conflicts"]},
            "docsidecar_sync_circuit_open": {(): float(status["circuit"]["state"] == "open")},
        }
        last = status["last_success"]
        if isinstance(last, dict) and isinstance(last.get("at"), int | float):
            out["docsidecar_sync_last_success_age_seconds"] = {(): max(0.0, time.time() - last["at"])}
        return out

    metrics.scrape_gauges(SYNC_GAUGES, read)

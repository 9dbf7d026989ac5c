"""Builds the :class:`sync.service.SyncService` from the sidecar's settings and components
(kept here so ``backend/services.py`` needs one line)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import httpx

from backend.embed.circuit import BreakerPolicy
from backend.events import EventBus
from backend.ingest.chunker import Chunker
from backend.ingest.service import IngestService
from backend.settings import Settings
from backend.store import Store
from sync.engine import EngineConfig
from sync.observe import RunObserver
from sync.service import SyncConfig, SyncService
from sync.supabase.retry import RetryPolicy


def sync_config(settings: Settings, **overrides: Any) -> SyncConfig:
    config = SyncConfig(
        auto=settings.sync_auto,
        interval_s=settings.sync_interval_s,
        download=settings.sync_download,
        retry=RetryPolicy(
            max_attempts=settings.sync_retry_attempts,
            backoff_initial_s=settings.sync_backoff_initial_s,
            backoff_max_s=max(settings.sync_backoff_max_s, settings.sync_backoff_initial_s),
        ),
        connectivity_poll_s=settings.sync_connectivity_poll_s,
        share_cache_s=settings.sync_share_cache_s,
        breaker=BreakerPolicy(failure_threshold=3, cooldown_s=settings.sync_backoff_max_s),
        engine=EngineConfig(download=settings.sync_download),
    )
    return dataclasses.replace(config, **overrides)


def build_sync_service(
    settings: Settings,
    store: Store,
    events: EventBus,
    ingest: IngestService,
    chunker: Chunker,
    *,
    transport: httpx.BaseTransport | None = None,
    config: SyncConfig | None = None,
    on_run: RunObserver | None = None,
) -> SyncService:
    def count_tokens(texts: Sequence[str]) -> list[int]:
        return [len(spans) for spans in chunker.tokenizer.spans(texts)]

    return SyncService(
        store, events, ingest.blobs, config or sync_config(settings),
        data_dir=settings.data_dir, model_id=settings.model_id, count_tokens=count_tokens,
        on_ingest_queued=ingest.worker.notify, transport=transport, max_file_bytes=settings.max_upload_bytes,
        on_run=on_run,
    )  # fmt: skip

"""Composition root: builds every component, starts and stops them in dependency order.

Constructing :class:`Services` has no side effects; :meth:`start` opens the store
synchronously (fast, and a broken data dir must fail the start) and launches heavy components
in the background so the HTTP port answers at once; :meth:`stop` stops them in reverse order
and joins their threads.
"""

from __future__ import annotations

import logging
import os
import time
from functools import partial
from typing import Any

import httpx

from backend import __version__
from backend.components import Component, ComponentState
from backend.embed.circuit import BreakerPolicy
from backend.embed.http_embedder import HttpEmbedderConfig
from backend.embed.http_service import HttpEmbeddingService
from backend.embed.manifest import find_manifest
from backend.embed.model_switch import ModelSwitch
from backend.embed.reindex_job import ReindexJob
from backend.embed.service import EmbedConfig, EmbeddingService
from backend.embed.tokenizer import load_tokenizer
from backend.events import EventBus
from backend.ingest.blobs import BlobStore
from backend.ingest.chunker import Chunker
from backend.ingest.chunking import ChunkingConfig, HFSpanTokenizer
from backend.ingest.extract import ExtractionWorker
from backend.ingest.limits import ExtractLimits
from backend.ingest.service import IngestService
from backend.maintenance.doctor import Doctor
from backend.maintenance.doctor_state import last_report
from backend.metrics import Metrics
from backend.metrics_wiring import register_queue_gauges, register_sync_gauges
from backend.resources import default_models_dir
from backend.search.service import SearchConfig, SearchService
from backend.settings import Settings
from backend.store import Store, index_switch
from backend.store.counts import table_counts
from backend.watch.service import WatchService
from sync.wiring import build_sync_service

log = logging.getLogger(__name__)


class Services:
    def __init__(self, settings: Settings, *, sync_transport: httpx.BaseTransport | None = None) -> None:
        self.settings = settings
        self.started_at = time.time()
        self.events = EventBus()
        self.metrics = Metrics()
        self.metrics.info.labels(__version__).set(1)
        self.store = Store(
            settings.data_dir, min_free_bytes=settings.min_free_bytes, on_disk_change=self.events.publish,
            busy=self.metrics, on_write_queued=self.metrics.write_queued,
        )  # fmt: skip
        self.models_dir = settings.models_dir or default_models_dir()
        # the configured embedder: the local model, or an OpenAI-compatible server (embed_provider)
        self.embedding: EmbeddingService | HttpEmbeddingService
        refuse = None
        if settings.embed_provider == "http":
            self.embedding = http_embedding_service(settings)
            refuse = self.embedding.refuse
        else:
            self.embedding = self._embedding_service(settings.model_id)
        # which model answers queries, and the background switch when settings.model_id changed
        # (an HTTP provider is never rebuilt for: a non-empty index of another model refuses it)
        self.models = ModelSwitch(self.store, self.events, self.embedding, self._embedding_service,
                                  notify_worker=self._notify_jobs, on_incompatible=refuse)  # fmt: skip
        self.reindex = ReindexJob(self.store, self.events, self.models, notify_worker=self._notify_jobs)
        limits = ExtractLimits(max_file_bytes=settings.max_upload_bytes, timeout_seconds=settings.extract_timeout_s)
        chunker = Chunker(
            self._span_tokenizer,
            ChunkingConfig(target_tokens=settings.chunk_tokens, overlap_tokens=settings.chunk_overlap_tokens),
        )
        self.ingest = IngestService(
            self.store, self.events, self.embedding, ExtractionWorker(limits), chunker,
            BlobStore(settings.data_dir / "blobs"), data_dir=settings.data_dir,
            max_file_bytes=settings.max_upload_bytes, max_queued=settings.max_queued_jobs,
            retry_base_s=settings.ingest_retry_base_s,
            job_handlers={index_switch.KIND: self.reindex.run}, on_job_outcome=self.metrics.job_outcome,
        )  # fmt: skip
        self.watcher = WatchService(
            self.store, self.ingest, self.events, data_dir=settings.data_dir, quiet_s=settings.watch_quiet_s,
            rescan_interval_s=settings.watch_rescan_interval_s, polling_interval_s=settings.watch_poll_interval_s,
            max_watch_dirs=settings.watch_max_dirs,
        )  # fmt: skip
        self._components: list[Component] = [self.store, self.embedding, self.models, self.ingest, self.watcher]
        self._components.insert(1, self.store.disk)  # free space of the data dir (backend/maintenance)
        self.search = SearchService(
            self.store, self.models, search_config(settings), count_tokens=lambda text: count_tokens(chunker, text)
        )
        self._components.append(self.search)
        self.sync = build_sync_service(
            settings, self.store, self.events, self.ingest, chunker, transport=sync_transport,
            on_run=self.metrics.sync_run,
        )  # fmt: skip  # sync_transport: tests only
        self._components.append(self.sync)
        # states read when /v1/metrics is scraped (queue depths, sync lag)
        register_queue_gauges(self.metrics, self.ingest.worker, settings.max_queued_jobs, self.watcher)
        register_sync_gauges(self.metrics, self.sync)
        self.doctor = Doctor(self.store, self.ingest.blobs.exists, notify_jobs=self._notify_jobs)
        self._started: list[Component] = []

    def _embedding_service(self, model_id: str) -> EmbeddingService:
        name = "embedding" if model_id == self.settings.model_id else f"embedding:{model_id}"
        threads = self.settings.embed_threads or None
        config = EmbedConfig(models_dir=self.models_dir, model_id=model_id, threads=threads, stop_wait_s=0.3)
        return EmbeddingService(config, name=name, on_batch=partial(self.metrics.observe_embed, model_id))

    def _notify_jobs(self) -> None:
        self.ingest.worker.notify()

    def _span_tokenizer(self) -> HFSpanTokenizer:
        manifest = find_manifest(self.models_dir, self.settings.model_id)
        return HFSpanTokenizer(load_tokenizer(manifest, manifest.dir_in(self.models_dir)))

    def start(self) -> None:
        """Start every component; on failure stop what was started and re-raise."""
        for component in self._components:
            try:
                component.start()
            except BaseException:
                log.exception("component %s failed to start", component.name)
                self.stop()
                raise
            self._started.append(component)
        log.info("services started", extra={"schema_version": self.store.schema_version})

    def stop(self) -> None:
        """Stop started components in reverse order. Idempotent."""
        self.events.close()
        while self._started:
            component = self._started.pop()
            try:
                component.stop()
            except Exception:
                log.exception("component %s failed to stop cleanly", component.name)

    def component_states(self) -> dict[str, dict[str, Any]]:
        return {c.name: c.status.get().to_dict() for c in self._components}

    def status(self, port: int | None) -> dict[str, Any]:
        counts: dict[str, Any] | None = None
        doctor: dict[str, Any] | None = None
        self.store.disk.check()
        if self.store.status.get().state is ComponentState.READY:
            with self.store.read() as conn:
                counts = table_counts(conn)
                doctor = last_report(conn)
        return {
            "version": __version__,
            "pid": os.getpid(),
            "port": port,
            "data_dir": str(self.settings.data_dir),
            "uptime_s": round(time.time() - self.started_at, 3),
            "schema_version": self.store.schema_version,
            "counts": counts,
            "components": self.component_states(),
            "embedding": self.embedding_status(),
            "doctor": doctor,
        }

    def embedding_status(self) -> dict[str, Any]:
        """Provider, model, state and reason of the configured embedder (never its API key)."""
        if isinstance(self.embedding, HttpEmbeddingService):
            return self.embedding.summary()
        s = self.embedding.summary()
        err = s["error"] if s["state"] == "failed" else None
        return {
            "provider": "onnx", "model_id": s["model_id"], "dim": s["dim"], "state": s["state"],
            "reason": err["message"] if err else None, "error": err, "base_url": None, "model": None,
            "circuit": None, "retry_after_s": None,
        }  # fmt: skip


def http_embedding_service(settings: Settings, *, transport: httpx.BaseTransport | None = None) -> HttpEmbeddingService:
    """The HTTP provider of ``settings`` (``Settings`` checked that the embed_http_* are set)."""
    assert settings.embed_http_base_url and settings.embed_http_model and settings.embed_http_model_id
    assert settings.embed_http_dim is not None
    config = HttpEmbedderConfig(
        base_url=settings.embed_http_base_url,
        model=settings.embed_http_model,
        model_id=settings.embed_http_model_id,
        dim=settings.embed_http_dim,
        api_key=settings.embed_http_api_key,
        timeout_s=settings.embed_http_timeout_s,
        max_attempts=settings.embed_http_attempts,
        breaker=BreakerPolicy(cooldown_s=settings.embed_http_cooldown_s),
    )
    return HttpEmbeddingService(config)


def search_config(settings: Settings) -> SearchConfig:
    return SearchConfig(cache_ttl_s=settings.search_cache_ttl_s)


def count_tokens(chunker: Chunker, text: str) -> int:
    """Tokens of ``text`` for the RAG context budget: the model tokenizer, no special tokens."""
    return len(chunker.tokenizer.spans([text])[0])

"""Replies of the system routes (health, status)."""

from __future__ import annotations

from typing import Any

import msgspec

from backend.api.schemas import Out
from backend.api.schemas.maintenance import DoctorSummary


class Health(Out):
    status: str


class ComponentOut(Out):
    state: str
    """starting, ready, degraded, failed, stopped or disabled."""
    since: float
    error: dict[str, Any] | None
    detail: dict[str, Any] | None


class Counts(Out):
    documents: int
    chunks: int
    embeddings: int
    folders: int
    jobs: dict[str, int]
    outbox: int


class EmbeddingStatus(Out):
    """The configured embedder (``embed_provider``); never shows the API key."""

    provider: str
    """``onnx`` (local model) or ``http`` (an OpenAI-compatible server)."""
    model_id: str
    """Id the vectors are tagged with."""
    dim: int | None
    state: str
    """idle, starting, ready, unavailable (http: not answering; probed until it does), failed
    (not used: model files broken, or the provider refused as incompatible with the index) or stopped."""
    reason: str | None
    """Why it is not ready (unavailable / failed)."""
    error: dict[str, Any] | None
    """The error body behind ``reason``."""
    base_url: str | None
    """http: the server's root URL."""
    model: str | None
    """http: the model name sent to the server."""
    circuit: str | None
    """http: the circuit breaker, closed / open / half_open."""
    retry_after_s: float | None
    """http: seconds until an open circuit lets a request through."""


class Status(Out):
    version: str
    pid: int
    port: int | None
    data_dir: str
    uptime_s: float
    schema_version: int
    counts: Counts | None
    components: dict[str, ComponentOut]
    embedding: EmbeddingStatus
    doctor: DoctorSummary | None
    """The last ``docsidecar doctor`` run (None if never run)."""


class SseEvent(msgspec.Struct):
    """One Server-Sent Event: ``event`` names it (``hello``, ``job.progress``, ``resync``, …),
    ``data`` is a JSON object (with ``ts``), ``id`` is what ``Last-Event-ID`` resumes from."""

    event: str | msgspec.UnsetType = msgspec.UNSET
    data: str | msgspec.UnsetType = msgspec.UNSET
    id: str | msgspec.UnsetType = msgspec.UNSET
    retry: int | msgspec.UnsetType = msgspec.UNSET

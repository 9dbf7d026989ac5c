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


class Status(Out):
    version: str
    pid: int
    port: int | None
    data_dir: str
    uptime_s: float
    schema_version: int
    counts: Counts | None
    components: dict[str, ComponentOut]
    doctor: DoctorSummary | None
    """The last ``docsidecar doctor`` run (None if never run)."""


class SseEvent(msgspec.Struct):
    """One Server-Sent Event: ``event`` names it (``hello``, ``job.progress``, ``resync``, …),
    ``data`` is a JSON object (with ``ts``), ``id`` is what ``Last-Event-ID`` resumes from."""

    event: str | msgspec.UnsetType = msgspec.UNSET
    data: str | msgspec.UnsetType = msgspec.UNSET
    id: str | msgspec.UnsetType = msgspec.UNSET
    retry: int | msgspec.UnsetType = msgspec.UNSET

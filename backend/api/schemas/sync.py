"""Replies of the sync routes."""

from __future__ import annotations

from typing import Any

from backend.api.schemas import Out


class SessionOut(Out):
    supabase_url: str
    user_id: str | None
    email: str | None
    signed_in: bool
    signed_out_reason: str | None
    expires_at: float | None


class Circuit(Out):
    state: str
    retry_after_s: float


class SyncStatus(Out):
    enabled: bool
    state: str
    session: SessionOut | None
    signed_in: bool
    online: bool | None
    network_up: bool | None
    running: bool
    circuit: Circuit
    pending: int
    dead_letters: int
    conflicts: int
    device_id: str | None
    last_success: dict[str, Any] | None
    last_error: dict[str, Any] | None
    last_run: dict[str, Any] | None


class SyncRun(Out):
    report: dict[str, Any]
    status: SyncStatus


class DeadLetter(Out):
    id: int
    entity: str
    document_id: str
    op: str
    stage: str
    """upload or push."""
    hlc: int | None
    device: str | None
    code: str
    message: str
    detail: Any
    created_at: float


class DeadLetterPage(Out):
    items: list[DeadLetter]
    next_before: int | None


class Requeued(Out):
    id: int
    document_id: str
    requeued: bool


class VersionRef(Out):
    hlc: int
    device: str | None


class ConflictOut(Out):
    id: int
    document_id: str
    copy_document_id: str | None
    kind: str
    winner: VersionRef
    loser: VersionRef | None
    detail: Any
    created_at: float


class ConflictPage(Out):
    items: list[ConflictOut]
    next_before: int | None


class ShareUrl(Out):
    document_id: str
    url: str
    expires_in: int
    expires_at: float
    cached: bool
    stale: bool
    """Local changes are not pushed yet: the link serves the previous version."""

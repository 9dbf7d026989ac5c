"""Replies of the maintenance routes (``POST /v1/doctor``) and the doctor summary in ``/v1/status``."""

from __future__ import annotations

from backend.api.schemas import Out


class Finding(Out):
    check: str
    """Which check found it: sqlite, fts, vectors, foreign_keys, documents, …"""
    target: str
    message: str
    repair: str | None
    """The repair action that fixes it (``rebuild_fts``, ``rebuild_vectors:<model>``, …), or None."""
    count: int | None


class RepairDone(Out):
    action: str
    rows: int


class RepairFailed(Out):
    action: str
    error: str


class DoctorReport(Out):
    checked_at: float
    duration_s: float
    mode: str
    """``repair`` or ``check`` (``check_only=true``)."""
    quick: bool
    ok: bool
    """True when nothing remains to fix."""
    problems_found: list[Finding]
    repaired: list[RepairDone]
    repair_failed: list[RepairFailed]
    remaining: list[Finding]
    summary: str


class DoctorSummary(Out):
    """The last doctor run in short form: counts instead of lists."""

    checked_at: float | None
    ok: bool | None
    mode: str | None
    quick: bool | None
    problems_found: int
    repaired: list[RepairDone] | None
    remaining: int
    summary: str | None

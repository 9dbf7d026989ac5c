"""Replies of the document, job, ingest-queue, folder and coverage routes."""

from __future__ import annotations

from typing import Any

import msgspec

from backend.api.schemas import Out


class DocumentOut(Out):
    id: str
    scope: str
    source: str
    """upload, path, folder or remote."""
    folder_id: int | None
    path: str | None
    filename: str
    title: str | None
    mime: str | None
    size: int | None
    sha256: str | None
    status: str
    """queued, extracted, chunked, embedded, synced, failed, unsupported or no_text."""
    status_reason: str | None
    chunk_count: int
    tags: list[str]
    version: int
    created_at: float
    updated_at: float


class DocumentAdded(Out):
    document: DocumentOut
    job_id: int
    duplicate: bool = False
    """True (status 200) when the same bytes were already uploaded into the same scope."""


class DocumentPage(Out):
    items: list[DocumentOut]
    next_cursor: str | None


class ChunkOut(Out):
    id: int
    ordinal: int
    text: str
    char_start: int
    char_end: int
    page: int | None
    heading_path: list[str]
    token_count: int


class ChunkPage(Out):
    document_id: str
    total: int
    items: list[ChunkOut]
    next_offset: int | None


class Deleted(Out):
    deleted: str


class DocumentReindex(Out):
    document_id: str
    job_id: int


class Progress(Out):
    done: int
    total: int


class JobOut(Out):
    id: int
    kind: str
    document_id: str | None
    state: str
    """queued, running, done, failed or cancelled."""
    attempts: int
    progress: Progress
    error: str | None
    payload: dict[str, Any]
    created_at: float
    started_at: float | None
    finished_at: float | None


class JobPage(Out):
    items: list[JobOut]
    next_before: int | None


class QueueState(Out):
    paused: bool
    held_for: str | None
    """Why no job runs although some are due (``"disk space"`` while the disk is full), else None."""
    queued: int
    running: JobOut | None
    limit: int
    """Queued jobs beyond which adding documents answers 429."""
    stats: dict[str, int]


class FolderOut(Out):
    id: int
    path: str
    scope: str
    recursive: bool
    include: list[str]
    exclude: list[str]
    created_at: float
    scanned_at: float | None


class WatchedFolder(FolderOut):
    mode: str
    """starting, watching, polling, stopped or failed."""
    error: str | None
    pending: int
    """Changes seen and not yet applied."""
    deferred: int | msgspec.UnsetType = msgspec.UNSET
    """Files seen but held back until the ingest queue has room (backpressure)."""
    directories: int | msgspec.UnsetType = msgspec.UNSET
    """Directories watched (absent while the folder is not attached)."""


class FolderList(Out):
    items: list[WatchedFolder]


class FolderDeleted(Out):
    deleted: int


class RescanQueued(Out):
    folder_id: int
    rescan: str


class CoverageCounts(Out):
    total: int
    indexed: int
    pending: int
    skipped: int
    failed: int
    skipped_reasons: dict[str, int]
    failed_reasons: dict[str, int]
    summary: str


class FolderCoverage(CoverageCounts):
    folder_id: int | None
    path: str | None


class ScopeCoverage(CoverageCounts):
    scope: str


class Coverage(Out):
    folders: list[FolderCoverage]
    scopes: list[ScopeCoverage]

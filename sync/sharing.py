"""Files in the cloud: on-demand download of a synced original, and signed share URLs."""

from __future__ import annotations

from typing import Any

from backend.errors import NotFound, ValidationFailed
from backend.store.documents import Document
from sync.errors import NotSynced, RemoteUnavailable, SupabaseError, SyncNotConfigured
from sync.local import SqliteSync
from sync.share import ShareCache
from sync.supabase.remote import SupabaseRemote

MAX_SHARE_S = 7 * 24 * 3600
SCHEMA_MISSING = frozenset({"PGRST202", "PGRST205", "42883", "42P01"})
"""PostgREST/PostgreSQL codes for a missing function or table: sync/migrations not applied."""


def _unreachable(exc: SupabaseError) -> RemoteUnavailable:
    return RemoteUnavailable(f"Supabase is unreachable: {exc.message}", detail=exc.summary())


def fetch_original(local: SqliteSync, remote: SupabaseRemote | None, doc_id: str) -> Document | None:
    """Download the original file of a document synced without it into the blob store and
    attach it; None when there is nothing to fetch (not synced, no file, or sync is off)."""
    exists, key, _ = local.share_target(doc_id)
    if not exists or key is None or remote is None:
        return None
    try:
        sha, _size = remote.download(key)
    except SupabaseError as exc:
        if exc.kind == "not_found":
            return None
        if exc.kind in ("transient", "auth_expired"):
            raise _unreachable(exc) from exc
        raise
    return local.attach_blob(doc_id, sha)


def share_url(
    local: SqliteSync, remote: SupabaseRemote | None, cache: ShareCache, doc_id: str, expires_in: int
) -> dict[str, Any]:
    if not 1 <= expires_in <= MAX_SHARE_S:
        raise ValidationFailed(
            f"expires_in must be between 1 and {MAX_SHARE_S} seconds", detail={"field": "expires_in"}
        )
    exists, key, pending = local.share_target(doc_id)
    if not exists:
        raise NotFound(f"no document {doc_id}", detail={"document_id": doc_id})
    if remote is None:
        raise SyncNotConfigured("sharing needs sync: POST /v1/sync/session first")
    if key is None:
        raise NotSynced(
            "the document has no cloud copy yet; it is shared once it has synced",
            detail={"document_id": doc_id, "pending": pending},
        )
    entry = cache.get(doc_id, key, expires_in)
    reused = entry is not None
    if entry is None:
        try:
            url = remote.sign(key, expires_in)
        except SupabaseError as exc:
            if exc.kind == "not_found":
                raise NotSynced("the cloud copy of the file is missing", detail={"document_id": doc_id}) from exc
            if exc.kind in ("transient", "auth_expired"):
                raise _unreachable(exc) from exc
            raise
        entry = cache.put(doc_id, key, expires_in, url)
    return {
        "document_id": doc_id,
        "url": entry.url,
        "expires_in": entry.expires_in,
        "expires_at": entry.expires_at,
        "cached": reused,
        "stale": pending,
    }

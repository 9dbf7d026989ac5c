"""The pull side of the local store: which pulled versions need their chunks, and applying a
page of pulled versions (each decided again inside the write transaction)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import apsw

from backend.store import kv
from sync.conflicts import LocalState, PullAction, decide_pull
from sync.local import documents as local_docs
from sync.local import state
from sync.protocol import ApplyResult, InChunk


def local_state(conn: apsw.Connection, doc_id: str) -> LocalState:
    row = conn.execute("SELECT indexed_sha256, chunk_count FROM documents WHERE id = ?", (doc_id,)).fetchone()
    sd = state.get_doc(conn, doc_id)
    return LocalState(
        exists=row is not None,
        indexed_sha256=row[0] if row else None,
        chunk_count=int(row[1]) if row else 0,
        base=sd.base if sd else None,
        pending=state.has_pending(conn, doc_id),
    )


def needs_content(conn: apsw.Connection, rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The pulled rows that will be applied with new content (their chunks must be fetched)."""
    return [r for r in rows if decide_pull(r, local_state(conn, str(r["id"]))) is PullAction.APPLY_CONTENT]


def apply_pulled(
    conn: apsw.Connection,
    rows: Sequence[Mapping[str, Any]],
    chunks: Mapping[str, list[InChunk]],
    blobs: Mapping[str, tuple[str, int]],
    model_id: str,
    next_cursor: str | None,
) -> ApplyResult:
    """Apply pulled versions; store ``next_cursor`` in the same transaction unless a row that
    now needs content came without its chunks (then the page is pulled again next run)."""
    result = ApplyResult()
    for row in rows:
        doc_id = str(row["id"])
        action = decide_pull(row, local_state(conn, doc_id))
        if action in (PullAction.SKIP_PENDING, PullAction.SKIP_SAME, PullAction.SKIP_STALE):
            result.skipped += 1
            continue
        if action is PullAction.APPLY_CONTENT and doc_id not in chunks:
            result.incomplete = True
            continue
        if action is PullAction.DELETE_LOCAL:
            doc = local_docs.delete_local(conn, doc_id)
            if doc is not None and doc.blob_key:
                result.removed_blobs.append(doc.blob_key)
            result.deleted.append(doc_id)
        elif action is PullAction.APPLY_META:
            local_docs.write_meta(conn, doc_id, row)
            result.changed.append(doc_id)
        elif action is PullAction.APPLY_CONTENT:
            blob = blobs.get(doc_id)
            local_docs.write_content(conn, doc_id, row, chunks[doc_id], blob[0] if blob else None, model_id)
            result.changed.append(doc_id)
        state.set_base(conn, doc_id, row)
        result.applied += 1
    if next_cursor is not None and not result.incomplete:
        kv.put(conn, state.CURSOR, next_cursor)
    return result


def blob_in_use(conn: apsw.Connection, key: str) -> bool:
    return conn.execute("SELECT 1 FROM documents WHERE blob_key = ? LIMIT 1", (key,)).fetchone() is not None


__all__ = ["ApplyResult", "apply_pulled", "blob_in_use", "local_state", "needs_content"]

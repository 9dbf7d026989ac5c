"""Write-transaction helpers shared by the pipeline, the API, the watcher and the jobs.

Every function takes the writer connection and runs inside the caller's transaction, so a
document's chunks, their FTS rows (triggers), their vectors, the document row and the search
index generation change together or not at all.
"""

from __future__ import annotations

import apsw
import numpy as np
import numpy.typing as npt

from backend.store import chunks as chunk_repo
from backend.store import documents as doc_repo
from backend.store import jobs
from backend.store import vectors as vector_repo
from backend.store.chunks import NewChunk
from backend.store.documents import Document

WAITING_FOR_MODEL = "indexed for keyword search; waiting for the embedding model"
CANCELLED = "ingest cancelled; reindex the document to try again"


def replace_chunks(
    conn: apsw.Connection,
    doc: Document,
    new_chunks: list[NewChunk],
    vectors: dict[str, npt.NDArray[np.float32]],
    model_id: str | None,
) -> list[int]:
    """Swap a document's chunks, FTS rows and vectors."""
    remove_chunks(conn, doc.id)
    ids = chunk_repo.insert_chunks(conn, doc.id, new_chunks)
    if model_id is not None:
        rows = [(cid, vectors[c.sha256]) for cid, c in zip(ids, new_chunks, strict=True) if c.sha256 in vectors]
        vector_repo.put_vectors(conn, model_id, rows)
    vector_repo.bump_generation(conn)
    return ids


def remove_chunks(conn: apsw.Connection, doc_id: str) -> None:
    old = chunk_repo.chunk_ids_of(conn, doc_id)
    if old:
        vector_repo.delete_chunks(conn, old)
        chunk_repo.delete_chunks_of(conn, doc_id)
        vector_repo.bump_generation(conn)


def delete_document(conn: apsw.Connection, doc_id: str) -> Document | None:
    """Remove a document with its chunks, FTS rows, vectors (every model) and tags; its queued
    jobs are cancelled (a running one finds the document gone and commits nothing)."""
    remove_chunks(conn, doc_id)
    jobs.cancel_queued_for_document(conn, doc_id, "document deleted")
    return doc_repo.delete(conn, doc_id)


def refresh_vector_meta(conn: apsw.Connection, doc_id: str) -> None:
    """After scope/mime/mtime of a document with stored chunks changed: update the mirror
    the vector index filters on, and drop cached search results."""
    vector_repo.update_document_meta(conn, doc_id)
    vector_repo.bump_generation(conn)


def set_scope(conn: apsw.Connection, doc_id: str, scope: str) -> None:
    current = doc_repo.get(conn, doc_id)
    if current is None or current.scope == scope:
        return
    doc_repo.update(conn, doc_id, scope=scope)
    refresh_vector_meta(conn, doc_id)


def ensure_embed_missing_job(conn: apsw.Connection) -> None:
    row = conn.execute("SELECT 1 FROM jobs WHERE kind = 'embed_missing' AND state IN ('queued', 'running')").fetchone()
    if row is None:
        jobs.enqueue(conn, "embed_missing", priority=-1, max_attempts=1_000_000)


def queue_ingest(conn: apsw.Connection, doc_id: str) -> jobs.Job:
    """An ingest job for a document whose file changed: a queued one is reused, a running one
    is not (it may have read the old bytes)."""
    return jobs.active_for_document(conn, doc_id, "ingest", ("queued",)) or jobs.enqueue(
        conn, "ingest", document_id=doc_id
    )


def restore_after_cancel(conn: apsw.Connection, doc_id: str, prior_status: str) -> None:
    """A cancelled ingest leaves the document as it was before the job (its previous version
    stays indexed), or ``failed`` with an explanation when it had never been indexed."""
    doc = doc_repo.get(conn, doc_id)
    if doc is None:
        return
    if doc.chunk_count > 0 and doc.indexed_sha256 and prior_status in {*doc_repo.INDEXED_STATUSES, "chunked"}:
        reason = WAITING_FOR_MODEL if prior_status == "chunked" else None
        doc_repo.set_status(conn, doc_id, prior_status, reason)
    elif doc.status in {"queued", "extracted", "chunked"}:
        doc_repo.set_status(conn, doc_id, "failed", CANCELLED)

"""Writing server versions into the local index, and conflicted copies (writer-side helpers).

Remote changes never record outbox rows: they came from the server. Chunks, FTS rows and
vectors are swapped with the ingest pipeline's own helpers, in the caller's transaction, so
search never sees half a version. Embeddings of the local model are used as they are; chunks
embedded with another model get their vectors from a local ``embed_missing`` job.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping, Sequence
from typing import Any

import apsw
import numpy as np

from backend.ingest.index_tx import delete_document, ensure_embed_missing_job, replace_chunks
from backend.store import chunks as chunk_repo
from backend.store import documents as doc_repo
from backend.store import jobs, outbox
from backend.store import vectors as vector_repo
from backend.store.chunks import HEADING_SEPARATOR, NewChunk
from backend.store.documents import Document
from sync.local import state
from sync.protocol import InChunk

NO_TEXT_REASON = "the cloud copy has no indexed text"
REEMBED_REASON = "synced from the cloud; embedding locally with this device's model"
_DETACHED = {"source": "remote", "path": None, "folder_id": None, "mtime_ns": None}


def _fields(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "scope": row.get("scope") or "default",
        "filename": row.get("filename") or "document",
        "title": row.get("title") or None,
        "mime": row.get("mime") or None,
        "size": row.get("size"),
        "sha256": row.get("sha256"),
    }


def write_meta(conn: apsw.Connection, doc_id: str, row: Mapping[str, Any]) -> None:
    """Same content, new metadata (rename, scope change): chunks and vectors stay."""
    doc_repo.update(conn, doc_id, sync=False, **_fields(row))
    vector_repo.update_document_meta(conn, doc_id)
    vector_repo.bump_generation(conn)


def write_content(
    conn: apsw.Connection,
    doc_id: str,
    row: Mapping[str, Any],
    chunks: Sequence[InChunk],
    blob_key: str | None,
    model_id: str,
) -> Document:
    """Make the local document ``doc_id`` the server version ``row`` with its ``chunks``."""
    existing = doc_repo.get(conn, doc_id)
    fields = _fields(row)
    sha = fields["sha256"]
    if blob_key is None and existing is not None and existing.blob_key and existing.blob_key == sha:
        blob_key = existing.blob_key
    now = time.time()
    if existing is None:
        conn.execute(
            "INSERT INTO documents(id, scope, source, filename, title, mime, size, sha256, blob_key, status, "
            "created_at, updated_at) VALUES (?,?,'remote',?,?,?,?,?,?,'queued',?,?)",
            (doc_id, fields["scope"], fields["filename"], fields["title"], fields["mime"], fields["size"], sha,
             blob_key, now, now),
        )  # fmt: skip
    else:
        detach = _DETACHED if existing.source in ("path", "folder") else {}
        doc_repo.update(conn, doc_id, sync=False, blob_key=blob_key, **fields, **detach)
    new_chunks = [
        NewChunk(
            ordinal=c.ordinal,
            text=c.text,
            sha256=hashlib.sha256(c.text.encode("utf-8")).hexdigest(),
            char_start=c.char_start,
            char_end=c.char_end,
            page=c.page,
            heading_path=tuple(c.heading_path),
            token_count=c.token_count,
        )
        for c in chunks
    ]
    vectors = {
        n.sha256: c.embedding
        for n, c in zip(new_chunks, chunks, strict=True)
        if c.embedding is not None and c.model_id == model_id
    }
    doc = doc_repo.get(conn, doc_id)
    assert doc is not None
    replace_chunks(conn, doc, new_chunks, vectors, model_id)
    missing = any(n.sha256 not in vectors for n in new_chunks)
    if not new_chunks:
        status, reason = "no_text", NO_TEXT_REASON
    elif missing:
        status, reason = "chunked", REEMBED_REASON
        ensure_embed_missing_job(conn)
    else:
        status, reason = "synced", None
    doc_repo.update(
        conn, doc_id, sync=False, status=status, status_reason=reason, indexed_sha256=sha,
        chunk_count=len(new_chunks), version=(existing.version + 1) if existing else 1,
    )  # fmt: skip
    result = doc_repo.get(conn, doc_id)
    assert result is not None
    return result


def delete_local(conn: apsw.Connection, doc_id: str) -> Document | None:
    """Apply a server tombstone: the document, chunks and vectors go, no outbox row stays."""
    doc = delete_document(conn, doc_id)
    state.delete_outbox(conn, doc_id)
    return doc


def clone(conn: apsw.Connection, doc: Document, new_id: str, filename: str, title: str | None) -> None:
    """Copy a local document (row, tags, chunks, vectors of every model) under a new id and
    queue it for push. A file indexed in place moves to the copy (the original becomes the
    server's version, detached from the file)."""
    if doc.source in ("path", "folder"):
        conn.execute("UPDATE documents SET source = 'remote', path = NULL, folder_id = NULL WHERE id = ?", (doc.id,))
    status = "embedded" if doc.status == "synced" else doc.status
    now = time.time()
    conn.execute(
        "INSERT INTO documents(id, scope, source, folder_id, path, filename, title, mime, size, sha256, mtime_ns, "
        "blob_key, status, status_reason, indexed_sha256, chunk_count, version, created_at, updated_at) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,1,?,?)",
        (new_id, doc.scope, doc.source, doc.folder_id, doc.path, filename, title, doc.mime, doc.size, doc.sha256,
         doc.mtime_ns, doc.blob_key, status, doc.status_reason, doc.indexed_sha256, doc.chunk_count, now, now),
    )  # fmt: skip
    doc_repo.set_tags(conn, new_id, doc.tags)
    rows: list[tuple[Any, ...]] = conn.execute(
        "SELECT id, ordinal, text, sha256, char_start, char_end, page, heading_path, token_count FROM chunks "
        "WHERE document_id = ? ORDER BY ordinal",
        (doc.id,),
    ).fetchall()
    new_ids = chunk_repo.insert_chunks(
        conn,
        new_id,
        [
            NewChunk(int(ordinal), str(text), str(sha), int(start), int(end), None if page is None else int(page),
                     tuple(str(heading).split(HEADING_SEPARATOR)) if heading else (), int(tokens))
            for _, ordinal, text, sha, start, end, page, heading, tokens in rows
        ],
    )  # fmt: skip
    old_to_new = {int(r[0]): nid for r, nid in zip(rows, new_ids, strict=True)}
    by_model: dict[str, list[tuple[int, Any]]] = {}
    for chunk_id, model_id, blob in conn.execute(
        "SELECT e.chunk_id, e.model_id, e.vector FROM embeddings e JOIN chunks c ON c.id = e.chunk_id "
        "WHERE c.document_id = ?",
        (doc.id,),
    ):
        by_model.setdefault(str(model_id), []).append(
            (old_to_new[int(chunk_id)], np.frombuffer(bytes(blob), dtype="<f4"))
        )
    for model_id, pairs in by_model.items():
        vector_repo.put_vectors(conn, model_id, pairs)
    vector_repo.bump_generation(conn)
    copy = doc_repo.get(conn, new_id)
    assert copy is not None
    outbox.record(conn, "document", new_id, "upsert", copy.sync_payload())


def insert_remote_copy(
    conn: apsw.Connection, new_id: str, row: Mapping[str, Any], filename: str, blob: tuple[str, int] | None
) -> None:
    """A conflicted copy of a server version we displaced: a new local document from its file
    (indexed by the ingest pipeline), queued for push. Without a file, the metadata alone."""
    fields = _fields(row)
    if blob is not None:
        doc_repo.insert(
            conn, doc_id=new_id, scope=fields["scope"], source="upload", filename=filename, size=blob[1],
            sha256=blob[0], blob_key=blob[0], mime=fields["mime"],
        )  # fmt: skip
        jobs.enqueue(conn, "ingest", document_id=new_id)
    else:
        doc_repo.insert(
            conn, doc_id=new_id, scope=fields["scope"], source="upload", filename=filename, size=fields["size"],
            sha256=None, mime=fields["mime"],
        )  # fmt: skip
        doc_repo.set_status(conn, new_id, "no_text", "the displaced version had no file in the cloud")

"""The push side of the local store: freeze pending documents as versions, settle results."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import apsw
import numpy as np

from backend.ingest.blobs import BlobStore
from backend.store import documents as doc_repo
from backend.store.chunks import HEADING_SEPARATOR
from backend.store.vectors import NORM_TOLERANCE
from sync.conflicts import conflict_name
from sync.local import documents as local_docs
from sync.local import state
from sync.protocol import SETTLED_STATUSES, InChunk, OutChunk, OutVersion, Prepared
from sync.versions import Version, version_of

DIM = 384


@dataclass(frozen=True, slots=True)
class Device:
    id: str
    name: str

    def label_for(self, device_id: str | None) -> str:
        if device_id == self.id:
            return self.name
        return (device_id or "unknown")[:8]


def pending_documents(conn: apsw.Connection, exclude: set[str], limit: int) -> list[str]:
    out: list[str] = []
    for (entity_id,) in conn.execute(
        "SELECT entity_id FROM outbox WHERE entity = 'document' GROUP BY entity_id ORDER BY min(seq)"
    ):
        if entity_id not in exclude:
            out.append(str(entity_id))
            if len(out) >= limit:
                break
    return out


def _chunks(conn: apsw.Connection, doc_id: str, model_id: str) -> list[OutChunk]:
    out = []
    for ordinal, text, start, end, page, heading, blob in conn.execute(
        "SELECT c.ordinal, c.text, c.char_start, c.char_end, c.page, c.heading_path, e.vector FROM chunks c "
        "LEFT JOIN embeddings e ON e.chunk_id = c.id AND e.model_id = ? WHERE c.document_id = ? ORDER BY c.ordinal",
        (model_id, doc_id),
    ):
        vec = None
        if blob is not None:
            arr = np.frombuffer(bytes(blob), dtype="<f4").astype(np.float32)
            # the server rejects a whole chunks change for one bad vector: send such a chunk bare
            if (
                arr.shape == (DIM,)
                and np.all(np.isfinite(arr))
                and abs(float(np.linalg.norm(arr)) - 1) < NORM_TOLERANCE
            ):
                vec = arr
        out.append(
            OutChunk(int(ordinal), str(text), int(start), int(end), page,
                     str(heading).split(HEADING_SEPARATOR) if heading else [], model_id, vec)
        )  # fmt: skip
    return out


def prepare(
    conn: apsw.Connection, doc_id: str, device: Device, model_id: str, blobs: BlobStore, now: float | None = None
) -> Prepared:
    """Freeze the local state of ``doc_id`` as a version (reusing the version already assigned
    to the same outbox row, so a retry re-sends identical change ids) and read what to push."""
    rows: list[tuple[Any, ...]] = conn.execute(
        "SELECT seq, op, created_at FROM outbox WHERE entity = 'document' AND entity_id = ? ORDER BY seq", (doc_id,)
    ).fetchall()
    if not rows:
        return Prepared("dropped")
    seq, op, changed_at = int(rows[-1][0]), str(rows[-1][1]), float(rows[-1][2])
    doc = doc_repo.get(conn, doc_id)
    sd = state.get_doc(conn, doc_id)
    tombstone = doc is None or op == "delete"
    if tombstone and (sd is None or (sd.prep is None and (sd.base is None or sd.base_deleted))):
        state.delete_outbox(conn, doc_id)  # never reached the server, or already deleted there
        return Prepared("dropped")
    if doc is not None and not tombstone and doc.status not in SETTLED_STATUSES:
        return Prepared("deferred")
    if sd is not None and sd.prep is not None and sd.prep_seq == seq:
        version = sd.prep
    else:
        # the clock reads the time of the change, not of the push: last-writer-wins means the
        # later edit wins, however long a device was offline (still above all it has seen)
        version = Version(state.tick(conn, changed_at if now is None else now), device.id)
        state.set_prepared(conn, doc_id, seq, version)
    # attempts > 0 keeps outbox.record() from replacing these rows while the push is in flight
    conn.execute("UPDATE outbox SET attempts = attempts + 1 WHERE entity = 'document' AND entity_id = ?", (doc_id,))
    base = sd.base if sd else None
    known = sd.storage_key if sd else None
    if tombstone or doc is None:
        return Prepared("ready", OutVersion(doc_id, seq, version, base, True, known_key=known))
    sha = doc.indexed_sha256 or doc.sha256
    fields = {
        "scope": doc.scope,
        "title": doc.title or "",
        "filename": doc.filename,
        "mime": doc.mime or "application/octet-stream",
        "size": doc.size or 0,
        "sha256": sha,
    }
    source: Path | None = None
    from_path = False
    if sha and doc.blob_key == sha and blobs.exists(sha):
        source = blobs.path_of(sha)
    elif sha and doc.path:
        source, from_path = Path(doc.path), True
    chunks = _chunks(conn, doc_id, model_id)
    return Prepared("ready", OutVersion(doc_id, seq, version, base, False, fields, source, from_path, known, chunks))


def dead_letter(
    conn: apsw.Connection, v: OutVersion, stage: str, code: str, message: str, detail: dict[str, Any]
) -> None:
    state.add_dead_letter(
        conn, v.document_id, "delete" if v.deleted else "upsert", stage, v.version, v.seq, code, message, detail
    )
    state.delete_outbox(conn, v.document_id, v.seq)
    state.clear_prepared(conn, v.document_id)


def _newer_rows(conn: apsw.Connection, doc_id: str, seq: int) -> bool:
    row = conn.execute(
        "SELECT 1 FROM outbox WHERE entity = 'document' AND entity_id = ? AND seq > ? LIMIT 1", (doc_id, seq)
    ).fetchone()
    return row is not None


def _copy_names(row: Mapping[str, Any], label: str, when: dt.datetime) -> tuple[str, str | None]:
    filename = conflict_name(str(row.get("filename") or "document"), label, when)
    title = row.get("title") or None
    return filename, conflict_name(str(title), label, when) if title else None


def push_done(
    conn: apsw.Connection,
    device: Device,
    v: OutVersion,
    current: Mapping[str, Any],
    copy_of: Mapping[str, Any] | None,
    copy_blob: tuple[str, int] | None,
) -> str | None:
    """Our version is current on the server. ``copy_of``: the concurrent version it displaced,
    kept as a conflicted copy (a new document). Returns the copy's id."""
    state.delete_outbox(conn, v.document_id, v.seq)
    state.set_base(conn, v.document_id, current)
    if not v.deleted and not _newer_rows(conn, v.document_id, v.seq):
        conn.execute("UPDATE documents SET status = 'synced' WHERE id = ? AND status = 'embedded'", (v.document_id,))
    if copy_of is None:
        return None
    copy_id = str(uuid.uuid4())
    loser = version_of(copy_of.get("hlc"), copy_of.get("origin_device"))
    when = dt.datetime.now(dt.UTC)
    filename, _ = _copy_names(copy_of, device.label_for(loser.device if loser else None), when)
    local_docs.insert_remote_copy(conn, copy_id, copy_of, filename, copy_blob)
    state.add_conflict(
        conn, v.document_id, copy_id, "remote_replaced", v.version, loser,
        {"winner": dict(current), "loser": dict(copy_of)},
    )  # fmt: skip
    return copy_id


def push_lost(
    conn: apsw.Connection,
    device: Device,
    v: OutVersion,
    current: Mapping[str, Any],
    chunks: list[InChunk] | None,
    blob_key: str | None,
    make_copy: bool,
    model_id: str,
) -> tuple[bool, str | None]:
    """The server kept a concurrent version ``current``. With ``make_copy`` the local state
    becomes a conflicted copy first; then the document takes the server's version. Returns
    (done, copy id); not done while the document is being re-indexed (retried next run: the
    server keeps answering the same change id with the same result)."""
    doc = doc_repo.get(conn, v.document_id)
    busy = conn.execute(
        "SELECT 1 FROM jobs WHERE document_id = ? AND kind = 'ingest' AND state IN ('queued', 'running')",
        (v.document_id,),
    ).fetchone()
    if doc is not None and (busy is not None or doc.status not in SETTLED_STATUSES):
        return False, None
    winner = version_of(current.get("hlc"), current.get("origin_device"))
    assert winner is not None
    copy_id: str | None = None
    if not make_copy and _newer_rows(conn, v.document_id, v.seq):
        # the local state moved on after this version; it is a successor of the (equal) winner
        state.delete_outbox(conn, v.document_id, v.seq)
        state.set_base(conn, v.document_id, current)
        return True, None
    if make_copy and doc is not None:
        copy_id = str(uuid.uuid4())
        when = dt.datetime.now(dt.UTC)
        filename, title = _copy_names({"filename": doc.filename, "title": doc.title}, device.name, when)
        local_docs.clone(conn, doc, copy_id, filename, title)
        state.add_conflict(
            conn, v.document_id, copy_id, "local_lost", winner, v.version,
            {"winner": dict(current), "loser": v.document_json(None)},
        )  # fmt: skip
    state.delete_outbox(conn, v.document_id)
    if current.get("deleted"):
        if doc is not None:
            local_docs.delete_local(conn, v.document_id)
    elif chunks is not None:
        local_docs.write_content(conn, v.document_id, current, chunks, blob_key, model_id)
    elif doc is not None:
        local_docs.write_meta(conn, v.document_id, current)
    state.set_base(conn, v.document_id, current)
    return True, copy_id

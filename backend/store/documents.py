"""Documents repository: rows, tags, listing with cursor pagination, outbox records.

Every function takes an apsw connection: writes run on the writer thread inside its
transaction (so the outbox row lands in the same transaction as the change), reads on a
reader connection.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import apsw

from backend.store import outbox
from backend.store.vectors import bump_generation

SEARCHED_FIELDS = frozenset({"scope", "path", "filename", "title", "mime", "mtime_ns", "created_at"})
"""Fields search filters on or shows: changing one bumps the index generation (result cache)."""
STATUSES = ("queued", "extracted", "chunked", "embedded", "synced", "failed", "unsupported", "no_text")
INDEXED_STATUSES = ("embedded", "synced")
SOURCES = ("upload", "path", "folder", "remote")

_COLUMNS = (
    "id, scope, source, folder_id, path, filename, title, mime, size, sha256, mtime_ns, blob_key, "
    "status, status_reason, indexed_sha256, chunk_count, version, created_at, updated_at"
)


@dataclass(frozen=True, slots=True)
class Document:
    id: str
    scope: str
    source: str
    folder_id: int | None
    path: str | None
    filename: str
    title: str | None
    mime: str | None
    size: int | None
    sha256: str | None
    mtime_ns: int | None
    blob_key: str | None
    status: str
    status_reason: str | None
    indexed_sha256: str | None
    chunk_count: int
    version: int
    created_at: float
    updated_at: float
    tags: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "scope": self.scope,
            "source": self.source,
            "folder_id": self.folder_id,
            "path": self.path,
            "filename": self.filename,
            "title": self.title,
            "mime": self.mime,
            "size": self.size,
            "sha256": self.sha256,
            "status": self.status,
            "status_reason": self.status_reason,
            "chunk_count": self.chunk_count,
            "tags": list(self.tags),
            "version": self.version,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }

    def sync_payload(self) -> dict[str, Any]:
        """What the outbox carries for this document (metadata; chunks are read at push time)."""
        return {**self.to_dict(), "blob_key": self.blob_key}


def _row(row: tuple[Any, ...], tags: tuple[str, ...] = ()) -> Document:
    return Document(*row, tags=tags)  # type: ignore[misc]


def new_id() -> str:
    return str(uuid.uuid4())


def insert(
    conn: apsw.Connection,
    *,
    doc_id: str,
    scope: str,
    source: str,
    filename: str,
    path: str | None = None,
    folder_id: int | None = None,
    size: int | None = None,
    sha256: str | None = None,
    mtime_ns: int | None = None,
    blob_key: str | None = None,
    mime: str | None = None,
    tags: tuple[str, ...] = (),
) -> Document:
    now = time.time()
    conn.execute(
        "INSERT INTO documents(id, scope, source, folder_id, path, filename, mime, size, sha256, "
        "mtime_ns, blob_key, status, created_at, updated_at) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?, 'queued', ?, ?)",
        (doc_id, scope, source, folder_id, path, filename, mime, size, sha256, mtime_ns, blob_key, now, now),
    )
    set_tags(conn, doc_id, tags)
    doc = get(conn, doc_id)
    assert doc is not None
    outbox.record(conn, "document", doc_id, "upsert", doc.sync_payload())
    return doc


def set_tags(conn: apsw.Connection, doc_id: str, tags: tuple[str, ...]) -> None:
    bump_generation(conn)  # tag filters see the change at once (search result cache)
    conn.execute("DELETE FROM document_tags WHERE document_id = ?", (doc_id,))
    conn.executemany("INSERT OR IGNORE INTO document_tags(document_id, tag) VALUES (?, ?)", [(doc_id, t) for t in tags])


def tags_of(conn: apsw.Connection, doc_id: str) -> tuple[str, ...]:
    return tuple(
        str(r[0]) for r in conn.execute("SELECT tag FROM document_tags WHERE document_id = ? ORDER BY tag", (doc_id,))
    )


def get(conn: apsw.Connection, doc_id: str) -> Document | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM documents WHERE id = ?", (doc_id,)).fetchone()  # noqa: S608
    return _row(row, tags_of(conn, doc_id)) if row else None


def by_path(conn: apsw.Connection, path: str) -> Document | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM documents WHERE path = ?", (path,)).fetchone()  # noqa: S608
    return _row(row, tags_of(conn, str(row[0]))) if row else None


def update(conn: apsw.Connection, doc_id: str, *, sync: bool = True, **fields: Any) -> None:
    """Set columns of one document (names are checked against the schema), bump updated_at."""
    allowed = set(_COLUMNS.replace(" ", "").split(",")) - {"id", "created_at"}
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"unknown document fields {sorted(unknown)}")
    if SEARCHED_FIELDS.intersection(fields):
        bump_generation(conn)
    fields["updated_at"] = time.time()
    assignments = ", ".join(f"{name} = ?" for name in fields)
    conn.execute(f"UPDATE documents SET {assignments} WHERE id = ?", (*fields.values(), doc_id))  # noqa: S608
    if sync:
        doc = get(conn, doc_id)
        if doc is not None:
            outbox.record(conn, "document", doc_id, "upsert", doc.sync_payload())


def set_status(conn: apsw.Connection, doc_id: str, status: str, reason: str | None = None, **fields: Any) -> None:
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}")
    update(conn, doc_id, sync=False, status=status, status_reason=reason, **fields)


def delete(conn: apsw.Connection, doc_id: str) -> Document | None:
    """Remove a document; its chunks, FTS rows and embeddings go with it (cascade/triggers).

    Derived vector-index rows are removed by the caller through ``backend.store.vectors``
    (virtual tables have no foreign keys). Returns the deleted row.
    """
    doc = get(conn, doc_id)
    if doc is None:
        return None
    conn.execute("DELETE FROM documents WHERE id = ?", (doc_id,))
    bump_generation(conn)
    outbox.record(conn, "document", doc_id, "delete", {"id": doc_id, "scope": doc.scope})
    return doc


@dataclass(frozen=True, slots=True)
class ListQuery:
    scope: str | None = None
    tag: str | None = None
    status: str | None = None
    folder_id: int | None = None
    source: str | None = None
    limit: int = 50
    cursor: str | None = None


def encode_cursor(created_at: float, doc_id: str) -> str:
    raw = json.dumps([created_at, doc_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    """Inverse of :func:`encode_cursor`; raises ``ValueError`` on anything malformed."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, doc_id = json.loads(raw)
        return float(created_at), str(doc_id)
    except (ValueError, TypeError) as exc:
        raise ValueError("malformed cursor") from exc


def list_documents(conn: apsw.Connection, q: ListQuery) -> tuple[list[Document], str | None]:
    """Newest first, keyset-paginated by (created_at, id)."""
    where: list[str] = []
    params: list[str | int | float] = []
    for column, value in (("scope", q.scope), ("status", q.status), ("folder_id", q.folder_id), ("source", q.source)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if q.tag is not None:
        where.append("id IN (SELECT document_id FROM document_tags WHERE tag = ?)")
        params.append(q.tag)
    if q.cursor:
        created_at, doc_id = decode_cursor(q.cursor)
        where.append("(created_at, id) < (?, ?)")
        params += [created_at, doc_id]
    sql = f"SELECT {_COLUMNS} FROM documents"  # noqa: S608
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY created_at DESC, id DESC LIMIT ?"
    rows = conn.execute(sql, (*params, q.limit + 1)).fetchall()
    docs = [_row(r, tags_of(conn, str(r[0]))) for r in rows[: q.limit]]
    cursor = encode_cursor(docs[-1].created_at, docs[-1].id) if len(rows) > q.limit else None
    return docs, cursor

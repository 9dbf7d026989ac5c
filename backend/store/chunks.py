"""Chunks repository: atomic replacement of a document's chunks, and chunk reads."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import apsw

HEADING_SEPARATOR = " > "


@dataclass(frozen=True, slots=True)
class NewChunk:
    """A chunk about to be stored (ids are assigned by SQLite)."""

    ordinal: int
    text: str
    sha256: str
    char_start: int
    char_end: int
    page: int | None
    heading_path: tuple[str, ...]
    token_count: int


def chunk_ids_of(conn: apsw.Connection, document_id: str) -> list[int]:
    return [
        int(r[0]) for r in conn.execute("SELECT id FROM chunks WHERE document_id = ? ORDER BY ordinal", (document_id,))
    ]


def insert_chunks(conn: apsw.Connection, document_id: str, chunks: Sequence[NewChunk]) -> list[int]:
    """Insert chunks (FTS rows follow through triggers) and return their ids in order."""
    ids = []
    for c in chunks:
        conn.execute(
            "INSERT INTO chunks(document_id, ordinal, text, sha256, char_start, char_end, page, heading_path, "
            "token_count) VALUES (?,?,?,?,?,?,?,?,?)",
            (
                document_id,
                c.ordinal,
                c.text,
                c.sha256,
                c.char_start,
                c.char_end,
                c.page,
                HEADING_SEPARATOR.join(c.heading_path),
                c.token_count,
            ),
        )
        ids.append(int(conn.last_insert_rowid()))
    return ids


def delete_chunks_of(conn: apsw.Connection, document_id: str) -> list[int]:
    """Delete a document's chunks (FTS rows and embeddings follow); return the deleted ids."""
    ids = chunk_ids_of(conn, document_id)
    conn.execute("DELETE FROM chunks WHERE document_id = ?", (document_id,))
    return ids


def vectors_by_sha(conn: apsw.Connection, model_id: str, hashes: Iterable[str]) -> dict[str, bytes]:
    """Stored vectors of ``model_id`` for chunks with these text hashes (any document)."""
    wanted = list(set(hashes))
    found: dict[str, bytes] = {}
    for start in range(0, len(wanted), 500):
        part = wanted[start : start + 500]
        marks = ",".join("?" * len(part))
        rows = conn.execute(
            "SELECT c.sha256, e.vector FROM chunks c JOIN embeddings e ON e.chunk_id = c.id "  # noqa: S608
            f"WHERE e.model_id = ? AND c.sha256 IN ({marks})",
            (model_id, *part),
        )
        for sha, vector in rows:
            found.setdefault(str(sha), bytes(vector))
    return found


def list_chunks(conn: apsw.Connection, document_id: str, *, offset: int, limit: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT id, ordinal, text, char_start, char_end, page, heading_path, token_count FROM chunks "
        "WHERE document_id = ? AND ordinal >= ? ORDER BY ordinal LIMIT ?",
        (document_id, offset, limit),
    )
    return [
        {
            "id": r[0],
            "ordinal": r[1],
            "text": r[2],
            "char_start": r[3],
            "char_end": r[4],
            "page": r[5],
            "heading_path": str(r[6]).split(HEADING_SEPARATOR) if r[6] else [],
            "token_count": r[7],
        }
        for r in rows
    ]

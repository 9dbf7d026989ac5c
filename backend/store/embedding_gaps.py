"""Chunks that still lack a vector of a given model (the embed_missing job's work list)."""

from __future__ import annotations

from collections.abc import Sequence

import apsw
import numpy as np
import numpy.typing as npt

from backend.store import vectors as vector_repo

_MISSING = "FROM chunks c LEFT JOIN embeddings e ON e.chunk_id = c.id AND e.model_id = ? WHERE e.chunk_id IS NULL"


def chunks_without_vectors(conn: apsw.Connection, model_id: str, limit: int) -> list[tuple[int, str]]:
    return [
        (int(r[0]), str(r[1]))
        for r in conn.execute(f"SELECT c.id, c.text {_MISSING} ORDER BY c.id LIMIT ?", (model_id, limit))
    ]


def count_chunks_without_vectors(conn: apsw.Connection, model_id: str) -> int:
    row = conn.execute(f"SELECT count(*) {_MISSING}", (model_id,)).fetchone()
    return int(row[0]) if row else 0


def put_if_chunks_exist(
    conn: apsw.Connection, model_id: str, rows: Sequence[tuple[int, npt.NDArray[np.float32]]]
) -> int:
    """Store vectors for the chunks that still exist (a document may have changed meanwhile)."""
    ids = [cid for cid, _ in rows]
    existing: set[int] = set()
    for start in range(0, len(ids), 500):
        part = ids[start : start + 500]
        marks = ",".join("?" * len(part))
        existing |= {int(r[0]) for r in conn.execute(f"SELECT id FROM chunks WHERE id IN ({marks})", part)}  # noqa: S608
    keep = [(cid, vec) for cid, vec in rows if cid in existing]
    if keep:
        vector_repo.put_vectors(conn, model_id, keep)
        vector_repo.bump_generation(conn)
    return len(keep)

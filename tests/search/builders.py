"""Writing test corpora straight through the store repositories (real SQLite + sqlite-vec).

Used where a property test needs many small corpora quickly (random unit vectors stand in for
embeddings there); tests of the whole path index real files through the ingest pipeline.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import apsw
import numpy as np
import numpy.typing as npt

from backend.store import chunks as chunk_repo
from backend.store import documents as doc_repo
from backend.store import vectors as vector_repo
from backend.store.chunks import NewChunk
from backend.store.vectors import DEFAULT_MODEL_ID


@dataclass
class DocSpec:
    texts: Sequence[str]
    vectors: npt.NDArray[np.float32] | None = None
    scope: str = "default"
    mime: str | None = "text/plain"
    path: str | None = None
    mtime_ns: int | None = None
    tags: tuple[str, ...] = ()
    filename: str = "doc.txt"
    title: str | None = None
    pages: Sequence[int | None] | None = None
    headings: Sequence[tuple[str, ...]] | None = None
    doc_id: str = field(default_factory=doc_repo.new_id)


def unit_vectors(rng: np.random.Generator, n: int, dim: int = 384) -> npt.NDArray[np.float32]:
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def new_chunks(
    texts: Sequence[str],
    pages: Sequence[int | None] | None = None,
    headings: Sequence[tuple[str, ...]] | None = None,
    sep: str = " ",
) -> list[NewChunk]:
    out, pos = [], 0
    for i, text in enumerate(texts):
        out.append(
            NewChunk(
                ordinal=i,
                text=text,
                sha256=hashlib.sha256(text.encode()).hexdigest(),
                char_start=pos,
                char_end=pos + len(text),
                page=pages[i] if pages else None,
                heading_path=headings[i] if headings else (),
                token_count=max(1, len(text.split())),
            )
        )
        pos += len(text) + len(sep)
    return out


def add_document(conn: apsw.Connection, spec: DocSpec, model_id: str = DEFAULT_MODEL_ID) -> list[int]:
    """Insert one document with its chunks (and vectors, if given) in the caller's transaction."""
    source = "path" if spec.path else "upload"
    doc_repo.insert(
        conn,
        doc_id=spec.doc_id,
        scope=spec.scope,
        source=source,
        filename=spec.filename,
        path=spec.path,
        mtime_ns=spec.mtime_ns,
        mime=spec.mime,
        tags=spec.tags,
    )
    ids = chunk_repo.insert_chunks(conn, spec.doc_id, new_chunks(spec.texts, spec.pages, spec.headings))
    if spec.vectors is not None:
        vector_repo.put_vectors(conn, model_id, list(zip(ids, spec.vectors, strict=True)))
    doc_repo.update(
        conn,
        spec.doc_id,
        sync=False,
        status="embedded" if spec.vectors is not None else "chunked",
        chunk_count=len(ids),
        title=spec.title,
    )
    vector_repo.bump_generation(conn)
    return ids


def delete_document(conn: apsw.Connection, doc_id: str) -> None:
    ids = chunk_repo.chunk_ids_of(conn, doc_id)
    vector_repo.delete_chunks(conn, ids)
    doc_repo.delete(conn, doc_id)
    vector_repo.bump_generation(conn)

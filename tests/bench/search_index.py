"""Building search indexes for the retrieval evaluation and the search benchmark.

Rows go through the store's own repositories on the writer thread (documents, chunks + their
FTS5 rows by trigger, float32 ``embeddings``, the vec0 ``bit[384]`` table), exactly what the
ingest pipeline commits, but with vectors taken from the bench vector cache instead of being
re-embedded (embedding the PostgreSQL manual alone takes ~10 minutes on two cores).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import apsw
import numpy as np
import numpy.typing as npt

from backend.store import Store
from backend.store import chunks as chunk_repo
from backend.store import documents as doc_repo
from backend.store import vectors as vector_repo
from backend.store.chunks import NewChunk
from backend.store.vectors import DEFAULT_MODEL_ID
from tests.bench.corpus import PG_HTML_DIR, BenchChunk


@dataclass
class BenchDoc:
    doc_id: str
    filename: str
    title: str
    chunks: list[NewChunk]
    vectors: npt.NDArray[np.float32] | None
    path: str | None = None
    scope: str = "default"
    mime: str | None = "text/html"
    mtime_ns: int | None = None
    tags: tuple[str, ...] = field(default=())


def pg_documents(chunks: Sequence[BenchChunk], vectors: npt.NDArray[np.float32]) -> list[BenchDoc]:
    """One document per manual page (``path`` = the page's file), chunks in page order."""
    docs: dict[str, BenchDoc] = {}
    rows: dict[str, list[npt.NDArray[np.float32]]] = {}
    for c, vec in zip(chunks, vectors, strict=True):
        d = docs.get(c.page)
        if d is None:
            path = PG_HTML_DIR / c.page
            d = docs[c.page] = BenchDoc(
                doc_repo.new_id(), c.page, c.title, [], None, path=str(path),
                mtime_ns=path.stat().st_mtime_ns if path.exists() else None,
            )  # fmt: skip
            rows[c.page] = []
        d.chunks.append(
            NewChunk(
                len(d.chunks),
                c.text,
                c.sha256,
                c.char_start,
                c.char_end,
                None,
                tuple(c.heading_path.split(" > ")) if c.heading_path else (),
                c.token_count,
            )
        )
        rows[c.page].append(vec)
    for page, d in docs.items():
        d.vectors = np.stack(rows[page]).astype(np.float32)
    return list(docs.values())


def plain_chunks(texts: Sequence[str]) -> list[NewChunk]:
    """Chunks of a document made of ``texts`` joined by blank lines (offsets into that text)."""
    out, pos = [], 0
    for i, t in enumerate(texts):
        sha = hashlib.sha256(t.encode("utf-8")).hexdigest()
        out.append(NewChunk(i, t, sha, pos, pos + len(t), None, (), max(1, len(t) // 4)))
        pos += len(t) + 2
    return out


def _write(conn: apsw.Connection, docs: Sequence[BenchDoc]) -> None:
    for d in docs:
        doc_repo.insert(
            conn, doc_id=d.doc_id, scope=d.scope, source="path" if d.path else "upload", filename=d.filename,
            path=d.path, mtime_ns=d.mtime_ns, mime=d.mime, tags=d.tags,
        )  # fmt: skip
        ids = chunk_repo.insert_chunks(conn, d.doc_id, d.chunks)
        if d.vectors is not None:
            vector_repo.put_vectors(conn, DEFAULT_MODEL_ID, list(zip(ids, d.vectors, strict=True)))
        doc_repo.update(conn, d.doc_id, sync=False, status="embedded", title=d.title, chunk_count=len(ids),
                        indexed_sha256=hashlib.sha256(d.doc_id.encode()).hexdigest())  # fmt: skip
    vector_repo.bump_generation(conn)


def write_documents(store: Store, docs: Sequence[BenchDoc], batch: int = 200, progress: bool = False) -> None:
    """Commit ``docs`` in transactions of ``batch`` documents."""
    t0 = time.perf_counter()
    for i in range(0, len(docs), batch):
        part = docs[i : i + batch]
        store.write(lambda c, p=part: _write(c, p), timeout=600)
        if progress and (i // batch) % 20 == 0:
            print(f"  wrote {i + len(part)}/{len(docs)} documents ({time.perf_counter() - t0:.0f} s)", flush=True)


def batches(items: Sequence[BenchDoc], n: int) -> Iterator[Sequence[BenchDoc]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def data_dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())

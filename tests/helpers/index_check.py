"""Consistency checks of a docsidecar database, for tests: orphans, counts, folder ↔ index.

``index_problems`` lists every violated invariant (empty list = consistent):

* ``PRAGMA integrity_check`` is ok (and FTS5's own integrity-check when writable), if asked;
* FTS rows (``chunks_fts_docsize``) are exactly the chunk ids; vec0 rows of each index are
  exactly the chunk ids with an ``embeddings`` row of that model;
* every document's chunks are ordinals ``0..chunk_count-1``; an ``embedded`` document has a
  vector of the active model for every chunk; a skipped/failed one has no chunks.

``folder_problems`` compares a watched folder with its documents: one document per wanted
file (no missing, no extra, no duplicate), each indexed from the file's current bytes, and
its chunks exactly what the extractor + chunker make of the file now (no stale chunks).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import apsw

from backend.ingest.chunker import Chunker
from backend.ingest.extract import extract_file
from backend.store.connection import open_connection
from backend.store.store import DB_FILENAME
from backend.watch.scan import Rules, walk

NOT_INDEXED = ("failed", "unsupported", "no_text")


def open_db(data_dir: Path, *, readonly: bool = True) -> apsw.Connection:
    return open_connection(data_dir / DB_FILENAME, readonly=readonly)


def _ids(conn: apsw.Connection, sql: str, *args: Any) -> set[int]:
    return {int(r[0]) for r in conn.execute(sql, args)}


def index_problems(conn: apsw.Connection, *, integrity: bool = False, fts_check: bool = False) -> list[str]:
    """``integrity`` runs ``PRAGMA integrity_check``: only on a freshly opened connection (see
    :func:`open_db`) — SQLite 3.54's FTS5 part of it reports false "corruption" on a connection
    that cached the FTS structure before another connection changed it."""
    problems: list[str] = []
    if integrity:
        result = [r[0] for r in conn.execute("PRAGMA integrity_check")]
        if result != ["ok"]:
            problems.append(f"integrity_check: {result[:5]}")
    if fts_check:
        try:
            conn.execute("INSERT INTO chunks_fts(chunks_fts, rank) VALUES ('integrity-check', 1)")
        except apsw.Error as exc:
            problems.append(f"fts5 integrity-check: {exc}")
    chunk_ids = _ids(conn, "SELECT id FROM chunks")
    fts_ids = _ids(conn, "SELECT id FROM chunks_fts_docsize")
    if fts_ids != chunk_ids:
        problems.append(f"FTS rows without chunk: {sorted(fts_ids - chunk_ids)[:10]}, "
                        f"chunks without FTS row: {sorted(chunk_ids - fts_ids)[:10]}")  # fmt: skip
    for model_id, table in conn.execute("SELECT model_id, table_name FROM vector_indexes").fetchall():
        vec_ids = _ids(conn, f"SELECT chunk_id FROM {table}")
        emb_ids = _ids(conn, "SELECT chunk_id FROM embeddings WHERE model_id = ?", model_id)
        if vec_ids != emb_ids:
            problems.append(f"{table}: rows without embedding {sorted(vec_ids - emb_ids)[:10]}, "
                            f"embeddings without row {sorted(emb_ids - vec_ids)[:10]}")  # fmt: skip
        orphans = emb_ids - chunk_ids
        if orphans:
            problems.append(f"embeddings of deleted chunks: {sorted(orphans)[:10]}")
    active = conn.execute("SELECT model_id FROM vector_indexes WHERE state = 'ready' ORDER BY created_at").fetchone()
    docs = conn.execute("SELECT id, status, chunk_count, path FROM documents").fetchall()
    for doc_id, status, chunk_count, path in docs:
        ordinals = [
            int(r[0]) for r in conn.execute("SELECT ordinal FROM chunks WHERE document_id = ? ORDER BY 1", (doc_id,))
        ]
        if ordinals != list(range(chunk_count)):
            problems.append(f"document {path or doc_id}: chunk_count {chunk_count}, ordinals {ordinals[:8]}…")
        if status in NOT_INDEXED and ordinals and status != "failed":
            problems.append(f"document {path or doc_id} is {status} but has {len(ordinals)} chunks")
        if status == "embedded" and active is not None:
            missing = conn.execute(
                "SELECT count(*) FROM chunks c LEFT JOIN embeddings e ON e.chunk_id = c.id AND e.model_id = ? "
                "WHERE c.document_id = ? AND e.chunk_id IS NULL",
                (active[0], doc_id),
            ).fetchone()[0]
            if missing:
                problems.append(f"document {path or doc_id} is embedded but {missing} chunks lack a vector")
        if status == "embedded" and not ordinals:
            problems.append(f"document {path or doc_id} is embedded with zero chunks")
    return problems


def wanted_files(rules: Rules) -> dict[str, bytes]:
    return {p: Path(p).read_bytes() for p, _ in walk(rules)}


def folder_problems(
    conn: apsw.Connection,
    folder: Path,
    chunker: Chunker,
    *,
    expect_status: Callable[[str], str] = lambda _path: "embedded",
    deep: bool = True,
) -> list[str]:
    """Documents of the watched folder at ``folder`` vs. the files in it now (``deep``: also
    re-extract and re-chunk every file and compare the chunk texts)."""
    problems: list[str] = []
    row = conn.execute(
        "SELECT id, recursive, include_globs, exclude_globs FROM folders WHERE path = ?", (str(folder.resolve()),)
    ).fetchone()
    if row is None:
        return [f"folder {folder} is not watched"]
    rules = Rules(folder.resolve(), bool(row[1]), tuple(json.loads(row[2])), tuple(json.loads(row[3])))
    docs = conn.execute(
        "SELECT id, path, status, status_reason, indexed_sha256, chunk_count FROM documents WHERE folder_id = ?",
        (row[0],),
    ).fetchall()
    by_path: dict[str, list[tuple[Any, ...]]] = {}
    for d in docs:
        by_path.setdefault(str(d[1]), []).append(d)
    files = wanted_files(rules)
    for path in sorted(set(files) - set(by_path)):
        problems.append(f"missing document for {path}")
    for path in sorted(set(by_path) - set(files)):
        problems.append(f"stale document for {path} (no such file)")
    for path, rows in sorted(by_path.items()):
        if len(rows) > 1:
            problems.append(f"{len(rows)} documents for {path}")
        if path not in files:
            continue
        doc_id, _, status, reason, indexed_sha, _count = rows[0]
        want = expect_status(path)
        if status != want:
            problems.append(f"{path}: status {status} ({reason}), expected {want}")
            continue
        if status != "embedded":
            continue
        if indexed_sha != hashlib.sha256(files[path]).hexdigest():
            problems.append(f"{path}: indexed content is not the file's current content")
            continue
        if not deep:
            continue
        expected = [c.text for c in chunker.chunk(extract_file(Path(path)))]
        stored = [
            str(r[0]) for r in conn.execute("SELECT text FROM chunks WHERE document_id = ? ORDER BY ordinal", (doc_id,))
        ]
        if stored != expected:
            problems.append(f"{path}: {len(stored)} stored chunks differ from the {len(expected)} the file gives now")
    return problems

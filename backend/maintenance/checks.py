"""The consistency checks ``docsidecar doctor`` runs; each returns :class:`Finding` values.

* ``sqlite``: ``PRAGMA integrity_check`` (or ``quick_check``) on a connection opened just for
  it — SQLite 3.54 reports false FTS5 corruption on a connection that cached the FTS structure
  before another connection changed it;
* ``foreign_keys``: ``PRAGMA foreign_key_check`` (rows whose parent is gone);
* ``fts``: the keyword index exists with its triggers, passes FTS5's own ``integrity-check``
  against ``chunks`` (run on the writer connection), and has exactly one row per chunk;
* ``vectors``: for each model's vec0 table, that it can be read, that its rows are exactly the
  chunks with an ``embeddings`` row of that model, that a sample of its sign bits matches the
  float vectors, and that its mirrored scope/mime/time match the documents;
* ``documents``: ``chunk_count`` matches the stored chunks, embedded documents have a vector of
  the active model for every chunk, uploaded documents still have their stored copy.

``repair`` names what fixes a finding (:mod:`backend.maintenance.derived`); ``None`` means the
damage is in canonical data that docsidecar cannot rebuild by itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

import apsw

from backend.maintenance.derived import FTS_TABLE, FTS_TRIGGERS, missing_shadow_tables, table_sql
from backend.store import vectors as vector_repo
from backend.store.connection import open_connection

SAMPLE_VECTORS = 256
REBUILD_FTS = "rebuild_fts"
DELETE_ORPHANS = "delete_orphans"
FIX_CHUNK_COUNTS = "fix_chunk_counts"
EMBED_MISSING = "embed_missing"


def rebuild_vectors_action(model_id: str) -> str:
    return f"rebuild_vectors:{model_id}"


@dataclass(frozen=True, slots=True)
class Finding:
    check: str
    target: str
    message: str
    repair: str | None = None
    count: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _count(conn: apsw.Connection, sql: str, params: tuple[Any, ...] = ()) -> int:
    row = conn.execute(sql, params).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


# -- sqlite ---------------------------------------------------------------------------------------
def sqlite_integrity(db_path: Path, *, quick: bool) -> list[Finding]:
    pragma = "quick_check" if quick else "integrity_check"
    try:
        conn = open_connection(db_path, readonly=True)
    except Exception as exc:  # noqa: BLE001 - reported as the finding
        return [Finding("sqlite", "database", f"cannot open the database: {_error(exc)}")]
    try:
        lines = [str(r[0]) for r in conn.execute(f"PRAGMA {pragma}")]
    except apsw.Error as exc:
        lines = [_error(exc)]
    finally:
        conn.close()
    if lines == ["ok"]:
        return []
    out = []
    for line in lines[:20]:
        fts = "fts5" in line.lower() or FTS_TABLE in line
        target, repair = (FTS_TABLE, REBUILD_FTS) if fts else ("database", None)
        out.append(Finding("sqlite", target, f"{pragma}: {line}", repair))
    return out


def foreign_keys(conn: apsw.Connection) -> list[Finding]:
    counts: dict[tuple[str, str], int] = {}
    for table, _rowid, parent, _fk in conn.execute("PRAGMA foreign_key_check"):
        key = (str(table), str(parent))
        counts[key] = counts.get(key, 0) + 1
    return [
        Finding("foreign_keys", table, f"{n} row(s) of {table} point to missing {parent}", DELETE_ORPHANS, n)
        for (table, parent), n in sorted(counts.items())
    ]


# -- keyword index --------------------------------------------------------------------------------
def fts_structure(conn: apsw.Connection) -> list[Finding]:
    """Needs a connection that may write (FTS5's integrity-check is an INSERT): the writer's."""
    if table_sql(conn, FTS_TABLE) is None:
        return [Finding("fts", FTS_TABLE, "the keyword index table is missing", REBUILD_FTS)]
    out = [
        Finding("fts", name, f"trigger {name} keeping the keyword index up to date is missing", REBUILD_FTS)
        for name in FTS_TRIGGERS
        if table_sql(conn, name, "trigger") is None
    ]
    conn.execute("SAVEPOINT doctor_fts_check")  # rolled back either way: a check never writes
    try:
        conn.execute("INSERT INTO chunks_fts(chunks_fts, rank) VALUES ('integrity-check', 1)")
        failure = None
    except apsw.Error as exc:
        failure = exc
    finally:
        conn.execute("ROLLBACK TO doctor_fts_check")
        conn.execute("RELEASE doctor_fts_check")
    if failure is not None:
        out.append(Finding("fts", FTS_TABLE, f"FTS5 integrity-check failed: {_error(failure)}", REBUILD_FTS))
        return out
    try:
        missing = _count(
            conn,
            "SELECT count(*) FROM chunks c WHERE NOT EXISTS (SELECT 1 FROM chunks_fts_docsize d WHERE d.id = c.id)",
        )
        extra = _count(
            conn,
            "SELECT count(*) FROM chunks_fts_docsize d WHERE NOT EXISTS (SELECT 1 FROM chunks c WHERE c.id = d.id)",
        )
    except apsw.Error as exc:
        out.append(Finding("fts", FTS_TABLE, f"cannot read the keyword index: {_error(exc)}", REBUILD_FTS))
        return out
    if missing:
        message = f"{missing} chunk(s) missing from the keyword index"
        out.append(Finding("fts", FTS_TABLE, message, REBUILD_FTS, missing))
    if extra:
        out.append(Finding("fts", FTS_TABLE, f"{extra} keyword index row(s) without a chunk", REBUILD_FTS, extra))
    return out


def shadow_tables(conn: apsw.Connection) -> list[Finding]:
    """Missing shadow tables of the derived virtual tables (the writer's connection)."""
    out = []
    targets = [(FTS_TABLE, "fts", REBUILD_FTS)] + [
        (i.table, "vectors", rebuild_vectors_action(i.model_id))
        for i in vector_repo.list_indexes(conn)
        if i.state != "retired"
    ]
    for table, check, repair in targets:
        try:
            missing = missing_shadow_tables(conn, table)
        except apsw.Error as exc:
            out.append(Finding(check, table, f"cannot inspect {table}: {_error(exc)}", repair))
            continue
        if missing:
            out.append(Finding(check, table, f"{table} lacks its shadow table(s) {', '.join(missing)}", repair))
    return out


# -- vector indexes -------------------------------------------------------------------------------
def vector_tables(conn: apsw.Connection) -> list[Finding]:
    out: list[Finding] = []
    for index in vector_repo.list_indexes(conn):
        if index.state == "retired":
            continue  # being cleaned up by its job
        try:
            out += _vector_table(conn, index)
        except apsw.Error as exc:
            out.append(Finding("vectors", index.table, f"cannot read the vector index of {index.model_id}: "
                               f"{_error(exc)}", rebuild_vectors_action(index.model_id)))  # fmt: skip
    return out


def _vector_table(conn: apsw.Connection, index: vector_repo.VectorIndex) -> list[Finding]:
    t, model, repair = index.table, index.model_id, rebuild_vectors_action(index.model_id)
    if table_sql(conn, t) is None:
        return [Finding("vectors", t, f"the vector index table of {model} is missing", repair)]
    out: list[Finding] = []
    rows = _count(conn, f"SELECT count(*) FROM {t}")  # noqa: S608 - t checked by vectors.list_indexes
    vectors = _count(conn, "SELECT count(*) FROM embeddings WHERE model_id = ?", (model,))
    missing = _count(
        conn,
        f"SELECT count(*) FROM embeddings e WHERE e.model_id = ? "  # noqa: S608
        f"AND NOT EXISTS (SELECT 1 FROM {t}_rowids r WHERE r.rowid = e.chunk_id)",
        (model,),
    )
    extra = _count(
        conn,
        f"SELECT count(*) FROM {t}_rowids r WHERE NOT EXISTS "  # noqa: S608
        "(SELECT 1 FROM embeddings e WHERE e.chunk_id = r.rowid AND e.model_id = ?)",
        (model,),
    )
    if missing or extra or rows != vectors:
        message = f"{model}: {rows} index rows for {vectors} stored vectors ({missing} missing, {extra} without one)"
        out.append(Finding("vectors", t, message, repair, missing + extra or abs(rows - vectors)))
    sample = conn.execute(
        "SELECT chunk_id, vector FROM embeddings WHERE model_id = ? ORDER BY random() LIMIT ?", (model, SAMPLE_VECTORS)
    ).fetchall()
    wrong = 0
    for chunk_id, blob in sample:
        row = conn.execute(f"SELECT embedding FROM {t} WHERE chunk_id = ?", (chunk_id,)).fetchone()  # noqa: S608
        want = vector_repo.quantize(vector_repo.from_blobs([cast(bytes, blob)], index.dim))[0].tobytes()
        if row is not None and row[0] != want:
            wrong += 1
    if wrong:
        out.append(Finding("vectors", t, f"{model}: {wrong} of {len(sample)} sampled index rows do not match "
                           "their stored vector", repair, wrong))  # fmt: skip
    stale = _count(
        conn,
        f"SELECT count(*) FROM {t} v JOIN chunks c ON c.id = v.chunk_id JOIN documents d ON d.id = c.document_id "  # noqa: S608
        f"WHERE v.scope != d.scope OR v.mime != coalesce(d.mime, '') "
        f"OR abs(v.modified_at - {vector_repo.MODIFIED_AT_SQL}) > 1",
    )
    if stale:
        out.append(Finding("vectors", t, f"{model}: {stale} index rows with stale document metadata", repair, stale))
    return out


# -- documents ------------------------------------------------------------------------------------
def documents(conn: apsw.Connection, blob_exists: Callable[[str], bool]) -> list[Finding]:
    out: list[Finding] = []
    wrong_counts = _count(
        conn,
        "SELECT count(*) FROM documents d "
        "WHERE chunk_count != (SELECT count(*) FROM chunks c WHERE c.document_id = d.id)",
    )
    if wrong_counts:
        out.append(Finding("documents", "documents", f"{wrong_counts} document(s) with a wrong chunk count",
                           FIX_CHUNK_COUNTS, wrong_counts))  # fmt: skip
    active = vector_repo.active_model(conn)
    if active is not None:
        lacking = _count(
            conn,
            "SELECT count(*) FROM chunks c JOIN documents d ON d.id = c.document_id WHERE d.status = 'embedded' "
            "AND NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.chunk_id = c.id AND e.model_id = ?)",
            (active.model_id,),
        )
        if lacking:
            message = (
                f"{lacking} chunk(s) of embedded documents lack a vector of {active.model_id} "
                "(only those are embedded again)"
            )
            out.append(Finding("documents", "embeddings", message, EMBED_MISSING, lacking))
    lost = [
        str(r[1] or r[0])
        for r in conn.execute("SELECT blob_key, filename FROM documents WHERE blob_key IS NOT NULL")
        if not blob_exists(str(r[0]))
    ]
    if lost:
        out.append(Finding("documents", "blobs", f"{len(lost)} uploaded document(s) lost their stored copy "
                           f"(e.g. {lost[0]}): add the files again", None, len(lost)))  # fmt: skip
    return out

"""Rebuilding the derived indexes from the canonical tables (used by ``docsidecar doctor``).

Canonical: ``documents``, ``chunks``, ``embeddings``. Derived: the FTS5 keyword index
``chunks_fts`` (external content over ``chunks``, kept by three triggers) and one binary
``vec0`` table per model (:mod:`backend.store.vectors`). Everything here runs inside the
caller's write transaction, so a repair that fails half-way changes nothing.

A damaged virtual table cannot always be dropped: FTS5 refuses ``DROP TABLE`` when its
``_config`` row is missing or wrong, vec0 when one of its shadow tables is gone. :func:`force_drop`
handles that generically: it creates an intact twin of the table (same definition, another
name), recreates any missing shadow table and restores the config rows from the twin, then
drops both. Nothing canonical is touched, and no vector is recomputed: vec0 rows are
re-quantised from the stored float32 ``embeddings``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

import apsw

from backend.store import vectors as vector_repo
from backend.store.migrations import load_migrations

FTS_TABLE = "chunks_fts"
FTS_TRIGGERS = ("chunks_fts_insert", "chunks_fts_delete", "chunks_fts_update")
_CONFIG_SHADOWS = ("_config", "_info")  # FTS5 version row; vec0 version rows
_TWIN_SUFFIX = "__doctor_twin"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
T = TypeVar("T")


def attempt(conn: apsw.Connection, fn: Callable[[], T]) -> tuple[bool, T | None]:
    """Run ``fn`` inside a savepoint: (True, result), or (False, None) with its changes undone."""
    conn.execute("SAVEPOINT doctor_attempt")
    try:
        result = fn()
    except apsw.Error:
        conn.execute("ROLLBACK TO doctor_attempt")
        conn.execute("RELEASE doctor_attempt")
        return False, None
    conn.execute("RELEASE doctor_attempt")
    return True, result


def _ident(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"refusing {name!r} as a table name")
    return name


def table_sql(conn: apsw.Connection, name: str, kind: str = "table") -> str | None:
    row = conn.execute("SELECT sql FROM sqlite_master WHERE type = ? AND name = ?", (kind, name)).fetchone()
    return str(row[0]) if row and row[0] else None


def migration_statements(prefixes: tuple[str, ...]) -> dict[str, str]:
    """The latest ``CREATE …`` statement of each object named in ``prefixes`` (its name after
    the prefix), as the shipped migrations define it: the definition to recreate a derived
    table or trigger that is gone altogether."""
    found: dict[str, str] = {}
    for migration in load_migrations():
        buffer = ""
        for line in migration.sql.splitlines(keepends=True):
            if not buffer and (not line.strip() or line.lstrip().startswith("--")):
                continue
            buffer += line
            if not apsw.complete(buffer):
                continue
            statement, buffer = buffer.strip(), ""
            for prefix in prefixes:
                m = re.match(rf"^{re.escape(prefix)}\s+(\w+)", statement, re.IGNORECASE)
                if m:
                    found[m.group(1)] = statement.rstrip(";")
    return found


def _fts_definitions() -> tuple[str, dict[str, str]]:
    table = migration_statements(("CREATE VIRTUAL TABLE",)).get(FTS_TABLE)
    triggers = migration_statements(("CREATE TRIGGER",))
    if table is None:
        raise RuntimeError("no migration defines the keyword index")
    return table, {name: triggers[name] for name in FTS_TRIGGERS}


def _shadow_names(conn: apsw.Connection, table: str) -> list[str]:
    rows = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE ? ESCAPE '\\'",
        (table.replace("_", "\\_") + "\\_%",),
    )
    return [str(r[0]) for r in rows if str(r[0]) != table]


def _twin_sql(table: str, sql: str) -> tuple[str, str]:
    twin = table + _TWIN_SUFFIX
    return twin, re.sub(rf"\b{re.escape(table)}\b", twin, sql, count=1)


def missing_shadow_tables(conn: apsw.Connection, table: str) -> list[str]:
    """Shadow tables the virtual table ``table`` should have but does not (found by creating an
    intact twin inside a savepoint that is rolled back: needs a connection that may write)."""
    table = _ident(table)
    sql = table_sql(conn, table)
    if sql is None:
        return []
    twin, twin_sql = _twin_sql(table, sql)
    conn.execute("SAVEPOINT doctor_twin")
    try:
        conn.execute(twin_sql)
        suffixes = [name[len(twin) :] for name in _shadow_names(conn, twin)]
    finally:
        conn.execute("ROLLBACK TO doctor_twin")
        conn.execute("RELEASE doctor_twin")
    return [table + suffix for suffix in suffixes if table_sql(conn, table + suffix) is None]


def restore_shadows(conn: apsw.Connection, table: str) -> None:
    """Recreate the missing shadow tables of ``table`` and restore its config rows, from an intact
    twin; afterwards the virtual table can be opened and dropped again."""
    table = _ident(table)
    sql = table_sql(conn, table)
    if sql is None:
        return
    twin, twin_sql = _twin_sql(table, sql)
    conn.execute(f"DROP TABLE IF EXISTS {twin}")
    conn.execute(twin_sql)
    for twin_shadow in _shadow_names(conn, twin):
        suffix = twin_shadow[len(twin) :]
        shadow = table + suffix
        if table_sql(conn, shadow) is None:
            ddl = table_sql(conn, twin_shadow)
            assert ddl is not None
            conn.execute(ddl.replace(twin, table, 1))
        if suffix in _CONFIG_SHADOWS:
            conn.execute(f'DELETE FROM "{shadow}"')  # noqa: S608 - names checked above
            conn.execute(f'INSERT INTO "{shadow}" SELECT * FROM "{twin_shadow}"')  # noqa: S608
    conn.execute(f"DROP TABLE {twin}")


def force_drop(conn: apsw.Connection, table: str) -> None:
    """Drop the virtual table ``table`` even when its shadow tables are damaged or missing.

    The shadow tables are restored *before* the first ``DROP``: a failed ``DROP`` leaves the
    table's module instance broken on this connection for the rest of the transaction."""
    if table_sql(conn, _ident(table)) is None:
        return
    restore_shadows(conn, table)
    conn.execute(f"DROP TABLE {table}")


def rebuild_fts(conn: apsw.Connection) -> int:
    """Rebuild ``chunks_fts`` (and its triggers) from ``chunks``; returns the rows indexed."""
    table_ddl, trigger_ddl = _fts_definitions()
    existing = table_sql(conn, FTS_TABLE)
    rebuild = "INSERT INTO chunks_fts(chunks_fts) VALUES ('rebuild')"
    intact = existing is not None and not missing_shadow_tables(conn, FTS_TABLE)
    rebuilt = intact and attempt(conn, lambda: conn.execute(rebuild))[0]
    if not rebuilt:
        force_drop(conn, FTS_TABLE)
        conn.execute(existing or table_ddl)
        conn.execute(rebuild)
    for name, ddl in trigger_ddl.items():
        if table_sql(conn, name, "trigger") is None:
            conn.execute(ddl)
    vector_repo.bump_generation(conn)
    row = conn.execute(f"SELECT count(*) FROM {FTS_TABLE}_docsize").fetchone()  # noqa: S608
    return int(row[0]) if row else 0


def rebuild_vectors(conn: apsw.Connection, model_id: str) -> int:
    """Rebuild the vec0 table of ``model_id`` from its float32 ``embeddings`` rows (no model
    needed); the search's in-memory mirror reloads because the index epoch changes."""
    index = vector_repo.get_index(conn, model_id)
    if index is None:
        raise vector_repo.VectorIndexMissing(f"no vector index for model {model_id}")
    if not missing_shadow_tables(conn, index.table):
        ok, count = attempt(conn, lambda: vector_repo.rebuild_index(conn, model_id))
        if ok and count is not None:
            return count
    force_drop(conn, index.table)
    return vector_repo.rebuild_index(conn, model_id)


def delete_orphans(conn: apsw.Connection) -> int:
    """Remove rows no API can reach: chunks of missing documents, vectors of missing chunks,
    tags of missing documents; detach jobs and documents from missing parents. Returns rows changed."""
    changed = 0
    orphan_chunks = [
        int(r[0])
        for r in conn.execute(
            "SELECT id FROM chunks c WHERE NOT EXISTS (SELECT 1 FROM documents d WHERE d.id = c.document_id)"
        )
    ]
    vector_repo.delete_chunks(conn, orphan_chunks)
    conn.executemany("DELETE FROM chunks WHERE id = ?", [(i,) for i in orphan_chunks])
    changed += len(orphan_chunks)
    for sql in (
        "DELETE FROM embeddings WHERE NOT EXISTS (SELECT 1 FROM chunks c WHERE c.id = embeddings.chunk_id)",
        "DELETE FROM document_tags WHERE NOT EXISTS (SELECT 1 FROM documents d WHERE d.id = document_tags.document_id)",
        "UPDATE jobs SET document_id = NULL WHERE document_id IS NOT NULL "
        "AND NOT EXISTS (SELECT 1 FROM documents d WHERE d.id = jobs.document_id)",
        "UPDATE documents SET folder_id = NULL WHERE folder_id IS NOT NULL "
        "AND NOT EXISTS (SELECT 1 FROM folders f WHERE f.id = documents.folder_id)",
    ):
        conn.execute(sql)
        changed += int(conn.changes())
    if changed:
        vector_repo.bump_generation(conn)
    return changed


def fix_chunk_counts(conn: apsw.Connection) -> int:
    """Set ``documents.chunk_count`` to the chunks actually stored (a denormalised count)."""
    conn.execute(
        "UPDATE documents SET chunk_count = (SELECT count(*) FROM chunks c WHERE c.document_id = documents.id) "
        "WHERE chunk_count != (SELECT count(*) FROM chunks c WHERE c.document_id = documents.id)"
    )
    return int(conn.changes())

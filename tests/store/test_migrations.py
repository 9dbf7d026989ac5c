from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

import apsw
import pytest

from backend.store.connection import open_connection
from backend.store.migrations import (
    MigrationEdited,
    MigrationError,
    SchemaTooNew,
    apply_migrations,
    load_migrations,
    schema_version,
)


@pytest.fixture
def migrations_dir(tmp_path: Path) -> Path:
    src = Path(str(resources.files("backend.store").joinpath("migrations")))
    dst = tmp_path / "migrations"
    shutil.copytree(src, dst)
    return dst


def test_applies_all_then_is_idempotent(tmp_path: Path) -> None:
    migrations = load_migrations()
    conn = open_connection(tmp_path / "db.sqlite")
    assert apply_migrations(conn, migrations) == len(migrations)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table')")}
    assert {
        "documents",
        "chunks",
        "chunks_fts",
        "embeddings",
        "jobs",
        "outbox",
        "kv",
        "folders",
    } <= tables
    assert apply_migrations(conn, migrations) == len(migrations)
    assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] == len(migrations)
    conn.close()


def test_edited_migration_is_refused(tmp_path: Path, migrations_dir: Path) -> None:
    conn = open_connection(tmp_path / "db.sqlite")
    apply_migrations(conn, load_migrations(migrations_dir))
    first = sorted(migrations_dir.glob("0001_*.sql"))[0]
    first.write_text(first.read_text() + "\n-- an innocent-looking edit\n")
    with pytest.raises(MigrationEdited, match="modified after it was applied"):
        apply_migrations(conn, load_migrations(migrations_dir))
    conn.close()


def test_database_from_newer_version_is_refused(tmp_path: Path) -> None:
    conn = open_connection(tmp_path / "db.sqlite")
    apply_migrations(conn, load_migrations())
    conn.execute("INSERT INTO schema_migrations VALUES (999, '0999_future.sql', 'x', 0)")
    with pytest.raises(SchemaTooNew, match="newer version"):
        apply_migrations(conn, load_migrations())
    conn.close()


def test_failed_migration_rolls_back_completely(tmp_path: Path, migrations_dir: Path) -> None:
    (migrations_dir / f"{len(load_migrations()) + 1:04d}_broken.sql").write_text(
        "CREATE TABLE half_done (x);\nTHIS IS NOT SQL;\n"
    )
    conn = open_connection(tmp_path / "db.sqlite")
    with pytest.raises(MigrationError, match="broken"):
        apply_migrations(conn, load_migrations(migrations_dir))
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert "half_done" not in names
    assert schema_version(conn) == len(load_migrations())
    conn.close()


def test_gap_in_versions_is_refused(migrations_dir: Path) -> None:
    (migrations_dir / "0042_gap.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="without gaps"):
        load_migrations(migrations_dir)


def test_sqlite_vec_and_fts5_available(tmp_path: Path) -> None:
    conn = open_connection(tmp_path / "db.sqlite")
    assert conn.execute("SELECT vec_version()").fetchone()[0].startswith("v")
    conn.execute("CREATE VIRTUAL TABLE v USING vec0(e float[4])")
    conn.execute("INSERT INTO v(rowid, e) VALUES (1, '[1,0,0,0]'), (2, '[0,1,0,0]')")
    hit = conn.execute("SELECT rowid FROM v WHERE e MATCH '[0.9,0.1,0,0]' AND k = 1").fetchone()
    assert hit[0] == 1
    conn.execute("CREATE VIRTUAL TABLE f USING fts5(t)")
    conn.execute("INSERT INTO f VALUES ('hello sidecar world')")
    assert conn.execute("SELECT count(*) FROM f WHERE f MATCH 'sidecar'").fetchone()[0] == 1
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    conn.close()


def test_fts_follows_chunk_rows(tmp_path: Path) -> None:
    conn = open_connection(tmp_path / "db.sqlite")
    apply_migrations(conn, load_migrations())
    conn.execute(
        "INSERT INTO documents(id, source, filename, created_at, updated_at) VALUES ('d1', 'upload', 'a.txt', 0, 0)"
    )
    conn.execute(
        "INSERT INTO chunks(document_id, ordinal, text, sha256, char_start, char_end, token_count) "
        "VALUES ('d1', 0, 'the quick brown fox', 'h', 0, 19, 4)"
    )
    assert conn.execute("SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH 'brown'").fetchone()[0] == 1
    conn.execute("DELETE FROM documents WHERE id = 'd1'")
    assert conn.execute("SELECT count(*) FROM chunks").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH 'brown'").fetchone()[0] == 0
    assert conn.execute("INSERT INTO chunks_fts(chunks_fts, rank) VALUES ('integrity-check', 1)") is not None
    conn.close()


def test_readonly_connection_cannot_write(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    writer = open_connection(path)
    apply_migrations(writer, load_migrations())
    reader = open_connection(path, readonly=True)
    with pytest.raises(apsw.ReadOnlyError):
        reader.execute("INSERT INTO kv VALUES ('a', 'b', 0)")
    reader.close()
    writer.close()

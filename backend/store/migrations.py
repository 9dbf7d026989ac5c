"""Ordered, hash-checked schema migrations.

Migrations are ``NNNN_name.sql`` files in ``backend/store/migrations/``, applied in numeric
order, each in one transaction together with its row in ``schema_migrations``. The sha256 of
every applied file is recorded; if a shipped migration is later edited, start-up refuses
with :class:`MigrationEdited` instead of running on a schema that silently differs. A
database written by a newer docsidecar (unknown versions) is refused too.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import apsw

from backend.errors import Unavailable

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class MigrationError(Unavailable):
    """The database schema cannot be brought to this version."""

    code = "migration_failed"


class MigrationEdited(MigrationError):
    """An applied migration file differs from the one recorded in the database."""

    code = "migration_edited"


class SchemaTooNew(MigrationError):
    """The database was migrated by a newer docsidecar."""

    code = "schema_too_new"


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


def load_migrations(directory: Path | None = None) -> list[Migration]:
    """Read the migration files, sorted by version; versions must be unique and gapless."""
    if directory is None:
        files = {
            entry.name: entry.read_text(encoding="utf-8")
            for entry in resources.files("backend.store").joinpath("migrations").iterdir()
            if entry.name.endswith(".sql")
        }
    else:
        files = {p.name: p.read_text(encoding="utf-8") for p in directory.glob("*.sql")}
    migrations = []
    for filename, sql in files.items():
        match = _NAME.match(filename)
        if not match:
            raise MigrationError(f"badly named migration file {filename!r} (want NNNN_name.sql)")
        migrations.append(Migration(int(match.group(1)), filename, sql))
    migrations.sort(key=lambda m: m.version)
    expected = list(range(1, len(migrations) + 1))
    if [m.version for m in migrations] != expected:
        raise MigrationError(f"migration versions must be 1..N without gaps, got {[m.name for m in migrations]}")
    return migrations


def apply_migrations(conn: apsw.Connection, migrations: list[Migration]) -> int:
    """Bring the schema up to date; return the resulting schema version."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, sha256 TEXT NOT NULL,"
        " applied_at REAL NOT NULL)"
    )
    applied = {
        int(row[0]): (str(row[1]), str(row[2]))
        for row in conn.execute("SELECT version, name, sha256 FROM schema_migrations")
    }
    known = {m.version: m for m in migrations}
    newer = sorted(v for v in applied if v not in known)
    if newer:
        raise SchemaTooNew(
            f"the database has schema version {max(newer)} but this docsidecar knows only up to "
            f"{len(migrations)}; it was written by a newer version — upgrade the app",
            detail={"database_version": max(newer), "known_version": len(migrations)},
        )
    for version, (name, digest) in applied.items():
        if known[version].sha256 != digest:
            raise MigrationEdited(
                f"migration {name} was modified after it was applied to this database "
                f"(recorded sha256 {digest[:12]}…, file {known[version].sha256[:12]}…)",
                detail={"migration": name},
            )
    for migration in migrations:
        if migration.version in applied:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            for _row in conn.execute(migration.sql):  # drain: apsw steps statement by statement
                pass
            conn.execute(
                "INSERT INTO schema_migrations(version, name, sha256, applied_at) VALUES (?,?,?,?)",
                (migration.version, migration.name, migration.sha256, time.time()),
            )
            conn.execute("COMMIT")
        except apsw.Error as exc:
            conn.execute("ROLLBACK")
            raise MigrationError(f"migration {migration.name} failed: {exc}") from exc
    return schema_version(conn)


def schema_version(conn: apsw.Connection) -> int:
    row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
    return int(row[0]) if row else 0

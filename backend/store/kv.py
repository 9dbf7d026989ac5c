"""Key/value state (active model id, index generation, cursors)."""

from __future__ import annotations

import time

import apsw


def get(conn: apsw.Connection, key: str, default: str | None = None) -> str | None:
    row = conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
    return str(row[0]) if row else default


def put(conn: apsw.Connection, key: str, value: str) -> None:
    conn.execute(
        "INSERT INTO kv(key, value, updated_at) VALUES (?, ?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        (key, value, time.time()),
    )


def increment(conn: apsw.Connection, key: str) -> int:
    """Atomically add one to an integer value (missing = 0) and return the new value."""
    value = int(get(conn, key, "0") or "0") + 1
    put(conn, key, str(value))
    return value

"""Database access for the gateway: a small connection pool and PostgREST-style transactions.

Every API request runs in one transaction that first does what PostgREST does::

    SET LOCAL ROLE <role from the JWT>;
    SELECT set_config('request.jwt.claims', <claims json>, true), set_config('request.method', ...)

so ``auth.uid()`` and row-level security behave exactly as on Supabase. The pool connects as the
``authenticator`` role (login, noinherit), never as a superuser, for the same reason.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql

API_ROLES = frozenset({"anon", "authenticated", "service_role"})


class ConnectionPool:
    """At most ``max_size`` open connections to one database, reused LIFO; thread-safe."""

    def __init__(self, conninfo: str, max_size: int = 8) -> None:
        self._conninfo = conninfo
        self._max_size = max_size
        self._idle: queue.LifoQueue[psycopg.Connection] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(max_size)
        self._all: list[psycopg.Connection] = []
        self._lock = threading.Lock()
        self._closed = True

    def start(self) -> None:
        self._closed = False

    def stop(self) -> None:
        self._closed = True
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        """Borrow a connection; a broken one is discarded instead of returned."""
        if self._closed:
            raise RuntimeError("connection pool is stopped")
        self._slots.acquire()
        conn: psycopg.Connection | None = None
        try:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                conn = psycopg.connect(self._conninfo, autocommit=True)
                with self._lock:
                    self._all.append(conn)
            yield conn
        finally:
            if conn is not None:
                if conn.closed or conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                    self._discard(conn)
                else:
                    self._idle.put(conn)
            self._slots.release()

    def _discard(self, conn: psycopg.Connection) -> None:
        with self._lock:
            if conn in self._all:
                self._all.remove(conn)
        conn.close()


@contextmanager
def api_transaction(
    conn: psycopg.Connection,
    role: str,
    claims: dict[str, Any] | None,
    method: str = "POST",
    path: str = "/",
) -> Iterator[psycopg.Connection]:
    """A transaction running as ``role`` with ``request.jwt.claims`` set, as PostgREST does."""
    if role not in API_ROLES:
        raise ValueError(f"unknown API role {role!r}")
    with conn.transaction():
        conn.execute(sql.SQL("set local role {}").format(sql.Identifier(role)))
        conn.execute(
            "select set_config('request.jwt.claims', %s, true),"
            " set_config('request.method', %s, true), set_config('request.path', %s, true)",
            (json.dumps(claims or {"role": role}), method, path),
        )
        yield conn

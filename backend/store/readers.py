"""Reader connections: a small pool; each read runs in its own snapshot transaction.

Each connection has its own busy handler (:mod:`backend.store.busy`); a lock wait is settled
when the connection comes back to the pool."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator
from pathlib import Path

import apsw

from backend.store.busy import DEFAULT_TIMEOUT_S, BusyObserver, BusyWaits
from backend.store.connection import open_connection
from backend.store.writer import WriterStopped


class ReaderPool:
    """Up to ``size`` read-only connections, opened lazily, closed by :meth:`close`."""

    def __init__(
        self, path: Path, size: int = 4, *, busy: BusyObserver | None = None, busy_timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> None:
        self.path = path
        self.size = size
        self._busy = busy
        self._busy_timeout_s = busy_timeout_s
        self._idle: queue.LifoQueue[tuple[apsw.Connection, BusyWaits]] = queue.LifoQueue()
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(size)
        self._open = True

    @contextlib.contextmanager
    def read(self) -> Iterator[apsw.Connection]:
        """A connection inside ``BEGIN``…``COMMIT``: every query sees one consistent snapshot."""
        with self.connection() as conn:
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")

    @contextlib.contextmanager
    def connection(self) -> Iterator[apsw.Connection]:
        """A bare reader connection (autocommit), for callers that manage transactions."""
        self._slots.acquire()
        try:
            conn, waits = self._checkout()
            try:
                yield conn
            finally:
                waits.settle()
                self._checkin(conn, waits)
        finally:
            self._slots.release()

    def _checkout(self) -> tuple[apsw.Connection, BusyWaits]:
        with self._lock:
            if not self._open:
                raise WriterStopped("the database is closed")
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            waits = BusyWaits("reader", self._busy, timeout_s=self._busy_timeout_s)
            return open_connection(self.path, readonly=True, busy=waits), waits

    def _checkin(self, conn: apsw.Connection, waits: BusyWaits) -> None:
        if not conn.getautocommit():
            conn.execute("ROLLBACK")
        with self._lock:
            if self._open:
                self._idle.put((conn, waits))
                return
        conn.close()

    def close(self) -> None:
        """Close every idle connection; connections in use close when returned."""
        with self._lock:
            self._open = False
        while True:
            try:
                self._idle.get_nowait()[0].close()
            except queue.Empty:
                return

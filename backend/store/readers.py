"""Reader connections: a small pool; each read runs in its own snapshot transaction."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator
from pathlib import Path

import apsw

from backend.store.connection import open_connection
from backend.store.writer import WriterStopped


class ReaderPool:
    """Up to ``size`` read-only connections, opened lazily, closed by :meth:`close`."""

    def __init__(self, path: Path, size: int = 4) -> None:
        self.path = path
        self.size = size
        self._idle: queue.LifoQueue[apsw.Connection] = queue.LifoQueue()
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
            conn = self._checkout()
            try:
                yield conn
            finally:
                self._checkin(conn)
        finally:
            self._slots.release()

    def _checkout(self) -> apsw.Connection:
        with self._lock:
            if not self._open:
                raise WriterStopped("the database is closed")
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            return open_connection(self.path, readonly=True)

    def _checkin(self, conn: apsw.Connection) -> None:
        if not conn.getautocommit():
            conn.execute("ROLLBACK")
        with self._lock:
            if self._open:
                self._idle.put(conn)
                return
        conn.close()

    def close(self) -> None:
        """Close every idle connection; connections in use close when returned."""
        with self._lock:
            self._open = False
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return

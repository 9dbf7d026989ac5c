"""The single writer: one named thread owns the only write connection.

Callers submit functions ``fn(conn) -> T``; the thread runs queued functions in one
``BEGIN IMMEDIATE`` transaction (group commit), each inside its own SAVEPOINT so one failing
function rolls back only its own changes, and resolves every future only after ``COMMIT``
returned. With ``synchronous=FULL`` a resolved future therefore means the write survives
``kill -9`` and power loss.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import apsw

from backend.errors import Unavailable
from backend.store.busy import DEFAULT_TIMEOUT_S, BusyObserver, BusyWaits
from backend.store.connection import open_connection
from backend.store.migrations import Migration, apply_migrations

T = TypeVar("T")
WriteFn = Callable[[apsw.Connection], T]

log = logging.getLogger(__name__)

_STOP = object()
MAX_GROUP = 64


class WriterStopped(Unavailable):
    """The writer is not running (not started yet, or stopping)."""

    code = "store_stopped"


class Writer:
    """Owns the write connection and the thread that uses it."""

    def __init__(
        self,
        path: Path,
        migrations: list[Migration],
        *,
        name: str = "sqlite-writer",
        on_error: Callable[[BaseException], object] | None = None,
        busy: BusyObserver | None = None,
        busy_timeout_s: float = DEFAULT_TIMEOUT_S,
        on_queue_wait: Callable[[float], object] | None = None,
    ) -> None:
        self.path = path
        self.name = name
        self._on_error = on_error
        """Told about every failed write (the disk guard recognises a full disk in it)."""
        self._busy = BusyWaits("writer", busy, timeout_s=busy_timeout_s)
        self._on_queue_wait = on_queue_wait
        self._migrations = migrations
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._accepting = False
        self._lock = threading.Lock()
        self.schema_version = 0
        self.busy_seconds = 0.0

    def start(self) -> None:
        """Open the connection and migrate on the writer thread; raise its error if it fails."""
        ready: Future[int] = Future()
        self._thread = threading.Thread(target=self._main, args=(ready,), name=self.name)
        self._thread.start()
        try:
            self.schema_version = ready.result()
        except BaseException:
            self._thread.join()
            self._thread = None
            raise
        with self._lock:
            self._accepting = True

    def submit(self, fn: WriteFn[T]) -> Future[T]:
        """Queue ``fn`` to run in a write transaction; the future resolves after commit."""
        fut: Future[T] = Future()
        with self._lock:
            if not self._accepting:
                raise WriterStopped("the database writer is not running")
            self._queue.put((fn, fut, time.perf_counter()))
        return fut

    def run(self, fn: WriteFn[T], timeout: float | None = None) -> T:
        """Submit ``fn`` and wait for its committed result."""
        return self.submit(fn).result(timeout)

    def stop(self) -> None:
        """Finish queued work, close the connection and join the thread. Idempotent."""
        with self._lock:
            self._accepting = False
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_STOP)
            thread.join()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _report(self, exc: BaseException) -> None:
        if self._on_error is not None:
            try:
                self._on_error(exc)
            except Exception:  # reporting must never break the writer
                log.exception("error hook failed")

    # -- writer thread -------------------------------------------------------------------
    def _main(self, ready: Future[int]) -> None:
        try:
            conn = open_connection(self.path, busy=self._busy)
        except BaseException as exc:  # noqa: BLE001 - re-raised in start() via the future
            ready.set_exception(exc)
            return
        try:
            try:
                version = apply_migrations(conn, self._migrations)
            except BaseException as exc:  # noqa: BLE001 - re-raised in start() via the future
                ready.set_exception(exc)
                return
            ready.set_result(version)
            self._loop(conn)
        finally:
            conn.close()

    def _loop(self, conn: apsw.Connection) -> None:
        while True:
            item = self._queue.get()
            batch = []
            stopping = item is _STOP
            if not stopping:
                batch.append(item)
            while len(batch) < MAX_GROUP and not stopping:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stopping = True
                else:
                    batch.append(nxt)
            if batch:
                self._run_batch(conn, batch)
            if stopping:
                return

    def _begin(self, conn: apsw.Connection, batch: list[tuple[WriteFn[Any], Future[Any], float]]) -> bool:
        """Take the write lock (where waits for another connection happen); on failure every
        call of the batch gets the error."""
        try:
            conn.execute("BEGIN IMMEDIATE")
        except apsw.Error as exc:
            self._report(exc)
            for _, fut, _ in batch:
                fut.set_exception(exc)
            return False
        finally:
            self._busy.settle()
        return True

    def _run_batch(self, conn: apsw.Connection, batch: list[tuple[WriteFn[Any], Future[Any], float]]) -> None:
        started = time.perf_counter()
        outcomes: list[tuple[Future[Any], bool, Any]] = []
        if not self._begin(conn, batch):
            return
        for fn, fut, queued_at in batch:
            if not fut.set_running_or_notify_cancel():
                continue
            if self._on_queue_wait is not None:
                self._on_queue_wait(time.perf_counter() - queued_at)
            conn.execute("SAVEPOINT w")
            try:
                result = fn(conn)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller through the future
                conn.execute("ROLLBACK TO w")
                conn.execute("RELEASE w")
                self._report(exc)
                outcomes.append((fut, False, exc))
            else:
                conn.execute("RELEASE w")
                outcomes.append((fut, True, result))
        try:
            conn.execute("COMMIT")
        except apsw.Error as exc:
            log.exception("commit failed; the batch of %d writes was rolled back", len(batch))
            if not conn.getautocommit():
                conn.execute("ROLLBACK")
            self._report(exc)
            for fut, _, _ in outcomes:
                fut.set_exception(exc)
            return
        finally:
            self.busy_seconds += time.perf_counter() - started
        for fut, ok, value in outcomes:
            if ok:
                fut.set_result(value)
            else:
                fut.set_exception(value)

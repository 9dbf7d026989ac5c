"""The store component: the database file, its writer thread and its readers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import apsw

from backend.components import ComponentState, StatusCell
from backend.maintenance.diskspace import DiskGuard
from backend.osdeps.paths import ensure_private_dir
from backend.store.busy import DEFAULT_TIMEOUT_S, BusyObserver
from backend.store.migrations import load_migrations
from backend.store.readers import ReaderPool
from backend.store.writer import WriteFn, Writer

T = TypeVar("T")

DB_FILENAME = "docsidecar.db"


class Store:
    """Owns ``<data_dir>/docsidecar.db``. ``start()`` migrates; ``stop()`` joins the writer."""

    name = "store"

    def __init__(
        self,
        data_dir: Path,
        *,
        readers: int = 4,
        min_free_bytes: int = 0,
        on_disk_change: Callable[[str, dict[str, Any]], object] | None = None,
        busy: BusyObserver | None = None,
        busy_timeout_s: float = DEFAULT_TIMEOUT_S,
        on_write_queued: Callable[[float], object] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.path = data_dir / DB_FILENAME
        self.disk = DiskGuard(data_dir, min_free_bytes, on_change=on_disk_change)
        """Whether the disk has room; every failed write is reported to it (a component of its own)."""
        self._writer = Writer(
            self.path, load_migrations(), on_error=self.disk.report, busy=busy, busy_timeout_s=busy_timeout_s,
            on_queue_wait=on_write_queued,
        )  # fmt: skip
        """``busy`` hears of every wait for a lock another connection holds, ``on_write_queued``
        how long each write waited for the writer thread (the composition root passes metrics)."""
        self._readers = ReaderPool(self.path, size=readers, busy=busy, busy_timeout_s=busy_timeout_s)
        self.status = StatusCell()

    def start(self) -> None:
        try:
            ensure_private_dir(self.data_dir)
            self._writer.start()
        except Exception as exc:
            self.status.fail(exc)
            raise
        self.status.set(ComponentState.READY)

    def stop(self) -> None:
        self._writer.stop()
        self._readers.close()
        self.status.set(ComponentState.STOPPED)

    @property
    def schema_version(self) -> int:
        return self._writer.schema_version

    @property
    def writer_busy_seconds(self) -> float:
        return self._writer.busy_seconds

    def write(self, fn: WriteFn[T], timeout: float | None = None) -> T:
        """Run ``fn(conn)`` in a write transaction and return its result once committed."""
        return self._writer.run(fn, timeout)

    def submit(self, fn: WriteFn[T]) -> Future[T]:
        """Queue ``fn`` without waiting; the future resolves once committed."""
        return self._writer.submit(fn)

    async def write_async(self, fn: WriteFn[T]) -> T:
        """As :meth:`write`, awaiting the commit without blocking the event loop."""
        return await asyncio.wrap_future(self._writer.submit(fn))

    @contextmanager
    def read(self) -> Iterator[apsw.Connection]:
        """A read-only connection inside one snapshot transaction."""
        with self._readers.read() as conn:
            yield conn

"""SQLite lock waits are measured: a second connection (as the sqlite3 shell or a backup tool
would) holds the write lock; the store's writer waits for it, then writes, or gives up after
its busy timeout — and the busy counters and the wait histogram say so."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import apsw
import pytest

from backend.metrics import Metrics
from backend.store import Store, kv
from tests.helpers.prom import Scrape


@contextmanager
def started_store(data_dir: Path, metrics: Metrics, **kwargs: float) -> Iterator[Store]:
    store = Store(data_dir, busy=metrics, on_write_queued=metrics.write_queued, **kwargs)  # type: ignore[arg-type]
    store.start()
    try:
        yield store
    finally:
        store.stop()


@contextmanager
def lock_held_elsewhere(store: Store) -> Iterator[apsw.Connection]:
    """Another connection to the same file inside ``BEGIN IMMEDIATE`` (the write lock)."""
    other = apsw.Connection(str(store.path))
    other.execute("BEGIN IMMEDIATE")
    try:
        yield other
    finally:
        if not other.getautocommit():
            other.execute("ROLLBACK")
        other.close()


def _until(predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def test_a_write_waits_for_a_lock_held_by_another_connection(tmp_path: Path) -> None:
    metrics = Metrics()
    with started_store(tmp_path, metrics) as store:
        with lock_held_elsewhere(store) as other:
            pending = store.submit(lambda c: kv.put(c, "probe", "written after the wait"))
            _until(lambda: Scrape(metrics.render().decode()).value("docsidecar_sqlite_busy_total",
                                                                    connection="writer") == 1, "the writer to wait")  # fmt: skip
            assert not pending.done()  # still waiting for the lock
            other.execute("COMMIT")  # the other program lets go
        pending.result(30)
        with store.read() as conn:
            assert kv.get(conn, "probe") == "written after the wait"
    m = Scrape(metrics.render().decode())
    assert m.value("docsidecar_sqlite_busy_total", connection="writer") == 1
    assert (m.value("docsidecar_sqlite_busy_retries_total", connection="writer") or 0) >= 1
    assert m.value("docsidecar_sqlite_lock_wait_seconds_count", connection="writer", outcome="acquired") == 1
    assert (m.value("docsidecar_sqlite_lock_wait_seconds_sum", connection="writer", outcome="acquired") or 0) > 0
    assert m.value("docsidecar_sqlite_lock_wait_seconds_count", connection="writer", outcome="timeout") is None
    # the write queued behind the lock: its wait for the writer is in the queue histogram too
    assert (m.value("docsidecar_store_write_queue_seconds_count") or 0) >= 1


def test_a_lock_held_past_the_busy_timeout_fails_the_write_and_is_counted(tmp_path: Path) -> None:
    metrics = Metrics()
    with started_store(tmp_path, metrics, busy_timeout_s=0.2) as store:
        with lock_held_elsewhere(store), pytest.raises(apsw.BusyError):
            store.write(lambda c: kv.put(c, "probe", "never"), timeout=30)
        store.write(lambda c: kv.put(c, "probe", "after the other program let go"), timeout=30)
        with store.read() as conn:
            assert kv.get(conn, "probe") == "after the other program let go"
    m = Scrape(metrics.render().decode())
    assert m.value("docsidecar_sqlite_busy_total", connection="writer") == 1
    assert m.value("docsidecar_sqlite_lock_wait_seconds_count", connection="writer", outcome="timeout") == 1
    assert m.value("docsidecar_sqlite_lock_wait_seconds_count", connection="writer", outcome="acquired") is None

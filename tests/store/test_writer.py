"""The single writer thread: commits, isolation of failures, clean stop without leaks."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import apsw
import psutil
import pytest

from backend.store import Store
from backend.store.writer import WriterStopped


def _insert(key: str):  # type: ignore[no-untyped-def]
    def fn(conn: apsw.Connection) -> str:
        conn.execute("INSERT INTO kv(key, value, updated_at) VALUES (?, 'v', 0)", (key,))
        return key

    return fn


def test_write_then_read_sees_committed_rows(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.start()
    try:
        assert store.write(_insert("a")) == "a"
        with store.read() as conn:
            assert conn.execute("SELECT key FROM kv").fetchall() == [("a",)]
    finally:
        store.stop()


def test_failing_write_rolls_back_only_itself(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.start()
    try:

        def boom(conn: apsw.Connection) -> None:
            conn.execute("INSERT INTO kv(key, value, updated_at) VALUES ('bad', 'v', 0)")
            raise ValueError("nope")

        with ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(store.write, _insert(f"k{i}")) for i in range(50)]
            bad = [pool.submit(store.write, boom) for _ in range(5)]
            assert sorted(f.result() for f in futures) == sorted(f"k{i}" for i in range(50))
            for f in bad:
                with pytest.raises(ValueError, match="nope"):
                    f.result()
        with store.read() as conn:
            keys = {r[0] for r in conn.execute("SELECT key FROM kv")}
        assert keys == {f"k{i}" for i in range(50)}
    finally:
        store.stop()


def test_constraint_violation_is_reported_to_the_caller(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.start()
    try:
        store.write(_insert("dup"))
        with pytest.raises(apsw.ConstraintError):
            store.write(_insert("dup"))
        assert store.write(_insert("after")) == "after"
    finally:
        store.stop()


def test_stop_joins_thread_and_closes_files(tmp_path: Path) -> None:
    proc = psutil.Process()
    threads_before = {t.ident for t in threading.enumerate()}
    files_before = {f.path for f in proc.open_files()}
    store = Store(tmp_path)
    store.start()
    store.write(_insert("x"))
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: _read_count(store), range(16)))
    assert any(str(tmp_path) in f.path for f in proc.open_files())
    store.stop()
    store.stop()  # idempotent
    assert {t.ident for t in threading.enumerate()} <= threads_before
    leaked = {f.path for f in proc.open_files()} - files_before
    assert not leaked, leaked
    with pytest.raises(WriterStopped):
        store.write(_insert("late"))


def _read_count(store: Store) -> int:
    with store.read() as conn:
        return int(conn.execute("SELECT count(*) FROM kv").fetchone()[0])


def test_unopenable_database_fails_start_clearly(tmp_path: Path) -> None:
    (tmp_path / "docsidecar.db").mkdir()  # something that is not a database file is in the way
    store = Store(tmp_path)
    with pytest.raises(Exception, match="cannot open database"):
        store.start()
    assert store.status.get().state == "failed"
    assert store.status.get().error is not None

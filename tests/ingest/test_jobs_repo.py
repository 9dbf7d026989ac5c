"""The jobs state machine on a real SQLite file: claiming order, backoff, giving up, crash
recovery, cancellation, clock jumps."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from backend.store import Store, jobs


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path)
    s.start()
    yield s
    s.stop()


def test_backoff_doubles_from_the_base_and_is_capped() -> None:
    assert [jobs.backoff(n) for n in (1, 2, 3, 4)] == [2.0, 4.0, 8.0, 16.0]
    assert [jobs.backoff(n, 0.5) for n in (1, 2, 3)] == [0.5, 1.0, 2.0]
    assert jobs.backoff(30) == jobs.MAX_BACKOFF_S


def test_claim_order_priority_then_age_and_not_before(store: Store) -> None:
    def setup(conn):  # type: ignore[no-untyped-def]
        a = jobs.enqueue(conn, "ingest")
        b = jobs.enqueue(conn, "ingest", priority=5)
        c = jobs.enqueue(conn, "embed_missing", priority=9)
        return a, b, c

    a, b, c = store.write(setup)
    assert store.write(lambda conn: jobs.claim_next(conn, ("ingest",))).id == b.id  # type: ignore[union-attr]
    assert store.write(lambda conn: jobs.claim_next(conn, ("ingest",))).id == a.id  # type: ignore[union-attr]
    assert store.write(lambda conn: jobs.claim_next(conn, ("ingest",))) is None
    assert store.write(lambda conn: jobs.claim_next(conn, ())) is None  # every kind gated
    claimed = store.write(lambda conn: jobs.claim_next(conn, ("ingest", "embed_missing")))
    assert claimed is not None and claimed.id == c.id and claimed.state == "running"


def test_retry_backoff_then_give_up(store: Store) -> None:
    job = store.write(lambda c: jobs.enqueue(c, "ingest", max_attempts=3))
    for attempt in (1, 2):
        running = store.write(lambda c: jobs.claim_next(c, ("ingest",), now=time.time() + 1000))
        assert running is not None
        before = time.time()
        assert store.write(lambda c, j=running: jobs.retry_later(c, j, "disk busy", base=1.0)) == "queued"
        with store.read() as conn:
            row = jobs.get(conn, job.id)
            assert row is not None and row.attempts == attempt and row.error == "disk busy"
            assert row.not_before >= before + jobs.backoff(attempt, 1.0) - 0.01
            assert 0 < (jobs.next_due_in(conn, ("ingest",)) or 0) <= jobs.backoff(attempt, 1.0)
    running = store.write(lambda c: jobs.claim_next(c, ("ingest",), now=time.time() + 1000))
    assert running is not None
    assert store.write(lambda c: jobs.retry_later(c, running, "disk busy")) == "failed"
    with store.read() as conn:
        final = jobs.get(conn, job.id)
    assert final is not None and final.state == "failed" and final.attempts == 3
    assert final.error == "disk busy (gave up after 3 attempts)" and final.finished_at is not None


def test_recover_interrupted_requeues_at_once_and_eventually_fails(store: Store) -> None:
    job = store.write(lambda c: jobs.enqueue(c, "ingest", max_attempts=2))
    store.write(lambda c: jobs.claim_next(c, ("ingest",)))
    recovered = store.write(jobs.recover_interrupted)
    assert [(j.id, state) for j, state in recovered] == [(job.id, "queued")]
    with store.read() as conn:
        row = jobs.get(conn, job.id)
        assert row is not None and row.state == "queued" and row.not_before == 0 and row.attempts == 1
        assert row.error == jobs.INTERRUPTED
    store.write(lambda c: jobs.claim_next(c, ("ingest",)))
    assert [state for _, state in store.write(jobs.recover_interrupted)] == ["failed"]
    assert store.write(jobs.recover_interrupted) == []


def test_a_not_before_far_in_the_future_means_the_clock_jumped_back(store: Store) -> None:
    job = store.write(lambda c: jobs.enqueue(c, "ingest"))
    store.write(lambda c: c.execute("UPDATE jobs SET not_before = ? WHERE id = ?", (time.time() + 10 * 86400, job.id)))
    with store.read() as conn:
        assert jobs.next_due_in(conn, ("ingest",)) == 0.0
    assert store.write(lambda c: jobs.claim_next(c, ("ingest",))) is not None


def test_cancel_only_touches_queued_jobs(store: Store) -> None:
    queued = store.write(lambda c: jobs.enqueue(c, "ingest", document_id=None))
    running = store.write(lambda c: jobs.enqueue(c, "ingest"))
    store.write(lambda c: c.execute("UPDATE jobs SET state = 'running' WHERE id = ?", (running.id,)))
    assert store.write(lambda c: jobs.cancel(c, queued.id)).state == "cancelled"  # type: ignore[union-attr]
    assert store.write(lambda c: jobs.cancel(c, running.id)).state == "running"  # type: ignore[union-attr]
    assert store.write(lambda c: jobs.cancel(c, 12345)) is None
    with store.read() as conn:
        assert jobs.counts_by_state(conn) == {"cancelled": 1, "running": 1}

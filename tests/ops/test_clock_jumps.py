"""Wall-clock jumps (NTP corrections, a user changing the time, a laptop resumed) through the
clock seam (backend.maintenance.clock), never by changing the system clock: job retries keep
their delay bounded by the one they were given, priorities keep their order, and the sync
clock (hybrid logical clock) never goes backwards, even across restarts."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from backend.events import EventBus
from backend.ingest.pipeline import JobContext, Transient
from backend.ingest.worker import JobWorker
from backend.maintenance.clock import ShiftedClock
from backend.store import Store, jobs
from sync.local import state
from sync.versions import Version, hlc_millis

HOUR = 3600.0


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "data")
    s.start()
    yield s
    s.stop()


class FlakyHandler:
    """Fails with a transient error the first ``failures`` times, then succeeds; records when."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls: list[float] = []
        self.done = threading.Event()

    def __call__(self, ctx: JobContext) -> None:
        self.calls.append(time.monotonic())
        if len(self.calls) <= self.failures:
            raise Transient("file locked by another program")
        self.done.set()


def wait_requeued(store: Store, job_id: int, timeout: float = 20.0) -> jobs.Job:
    """The job after its first failure was recorded (queued again, one attempt counted)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with store.read() as conn:
            row = jobs.get(conn, job_id)
        if row is not None and row.state == "queued" and row.attempts == 1:
            return row
        time.sleep(0.02)
    raise AssertionError("the first failure was not recorded")


def run_worker(store: Store, handler: FlakyHandler, clock: ShiftedClock, retry_base_s: float) -> JobWorker:
    worker = JobWorker(store, EventBus(), {"ingest": handler}, retry_base_s=retry_base_s, clock=clock)
    worker.start()
    return worker


@pytest.mark.parametrize("jump_s", [-100.0, -HOUR, -30 * 86400.0])
def test_a_backward_jump_does_not_stretch_a_retry_delay(store: Store, jump_s: float) -> None:
    # base 1.5 s: the retry is due 1.5 s after the failure. The clock then jumps back; before
    # the seam's rule (updated_at later than "now" = the clock went back), a 100 s jump made
    # the job wait ~100 s (anything under MAX_BACKOFF_S was honoured as a real delay).
    clock = ShiftedClock()
    handler = FlakyHandler(1)
    job = store.write(lambda c: jobs.enqueue(c, "ingest"))
    worker = run_worker(store, handler, clock, retry_base_s=3.0)
    try:
        queued = wait_requeued(store, job.id)
        assert queued.not_before - queued.updated_at == pytest.approx(3.0)
        clock.jump(jump_s)  # after the delay was set, as a real jump would come
        jumped_at = time.monotonic()
        assert handler.done.wait(30), f"the retry never ran after a {jump_s:+.0f} s clock jump"
    finally:
        worker.stop()
    waited = handler.calls[1] - jumped_at
    assert waited < 12.0, f"retry waited {waited:.1f} s after a {jump_s:+.0f} s jump (its delay was 3 s)"
    with store.read() as conn:
        row = jobs.get(conn, job.id)
    assert row is not None and row.state == "done" and row.attempts == 1


def test_a_forward_jump_makes_waiting_jobs_due_early_and_loses_none(store: Store) -> None:
    clock = ShiftedClock()
    handler = FlakyHandler(1)
    job = store.write(lambda c: jobs.enqueue(c, "ingest"))
    worker = run_worker(store, handler, clock, retry_base_s=60.0)  # a minute's backoff …
    try:
        wait_requeued(store, job.id)
        clock.jump(+86400.0)
        jumped_at = time.monotonic()
        assert handler.done.wait(30), "the job was lost after a forward jump"
    finally:
        worker.stop()
    assert handler.calls[1] - jumped_at < 12.0  # … skipped by a day's jump: early, not lost


def test_jumps_keep_priority_order_and_the_repository_rule(store: Store) -> None:
    now = time.time()
    low = store.write(lambda c: jobs.enqueue(c, "ingest", priority=0))
    high = store.write(lambda c: jobs.enqueue(c, "ingest", priority=5))
    running = store.write(lambda c: jobs.claim_next(c, ("ingest",), now=now))
    assert running is not None and running.id == high.id
    assert store.write(lambda c: jobs.retry_later(c, running, "busy", delay=120.0, now=now)) == "queued"
    # an hour earlier (clock jumped back): the 120 s delay set "later" is not honoured as 1h+120s
    with store.read() as conn:
        assert jobs.next_due_in(conn, ("ingest",), now=now - HOUR) == 0.0
        assert jobs.next_due_in(conn, ("ingest",), now=now + 1) == 0.0  # `low` is due
    first = store.write(lambda c: jobs.claim_next(c, ("ingest",), now=now - HOUR))
    assert first is not None and first.id == high.id  # priority still decides among due jobs
    second = store.write(lambda c: jobs.claim_next(c, ("ingest",), now=now - HOUR))
    assert second is not None and second.id == low.id
    # without a jump the delay holds
    again = store.write(lambda c: jobs.retry_later(c, second, "busy", delay=120.0, now=now))
    assert again == "queued"
    with store.read() as conn:
        due = jobs.next_due_in(conn, ("ingest",), now=now + 1)
    assert due is not None and 118.0 <= due <= 119.5
    assert store.write(lambda c: jobs.claim_next(c, ("ingest",), now=now + 1)) is None


def test_sync_clock_never_goes_backwards_across_jumps_and_restarts(tmp_path: Path) -> None:
    wall = 1_900_000_000.0
    issued: list[int] = []

    def tick(s: Store, at: float) -> int:
        value = s.write(lambda c: state.tick(c, at))
        issued.append(value)
        return value

    for jump in (0.0, -HOUR, -365 * 86400.0, +86400.0, -86400.0, 0.0):
        s = Store(tmp_path / "data")  # a restart between every jump: the clock lives in the database
        s.start()
        try:
            wall += jump
            for _ in range(3):
                tick(s, wall)
        finally:
            s.stop()
    assert issued == sorted(issued) and len(set(issued)) == len(issued), "the HLC went backwards or repeated"
    # after the forward jump and the return, versions stay above the future ones already issued
    assert hlc_millis(issued[-1]) >= hlc_millis(max(issued[:-1]))
    # last-writer-wins: an edit made after the clock jumped back still beats the one before
    before, after = Version(issued[2], "device-a"), Version(issued[3], "device-a")
    assert after.newer_than(before) and not before.newer_than(after)


def test_sync_clock_stays_above_what_another_device_issued(tmp_path: Path) -> None:
    s = Store(tmp_path / "data")
    s.start()
    try:
        far_future = (2_100_000_000_000 << 16) | 7  # a device whose clock ran decades ahead
        s.write(lambda c: state.observe(c, far_future))
        ours = s.write(lambda c: state.tick(c, 1_900_000_000.0))
    finally:
        s.stop()
    assert ours > far_future

"""The busy handler's schedule and what it reports (pure: a fake clock and sleep)."""

from __future__ import annotations

from backend.store.busy import BusyWaits


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, ...]] = []

    def busy_began(self, role: str) -> None:
        self.events.append(("began", role))

    def busy_retried(self, role: str) -> None:
        self.events.append(("retried", role))

    def busy_ended(self, role: str, outcome: str, seconds: float) -> None:
        self.events.append(("ended", role, outcome, f"{seconds:.3f}"))


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.sleeps.append(round(s, 6))
        self.now += s


def test_waits_with_sqlites_schedule_then_gives_up_at_the_timeout() -> None:
    t, rec = FakeTime(), Recorder()
    waits = BusyWaits("writer", rec, timeout_s=0.05, clock=t.clock, sleep=t.sleep)
    calls = 0
    while waits(calls):
        calls += 1
    # 1 + 2 + 5 + 10 + 15 = 33 ms, then the 17 ms left of the 50 ms timeout, then SQLITE_BUSY
    assert t.sleeps == [0.001, 0.002, 0.005, 0.01, 0.015, 0.017]
    assert rec.events[0] == ("began", "writer") and rec.events.count(("retried", "writer")) == 6
    assert rec.events[-1] == ("ended", "writer", "timeout", "0.050")
    waits.settle()  # nothing left to report
    assert rec.events[-1] == ("ended", "writer", "timeout", "0.050") and len(rec.events) == 8


def test_a_wait_that_got_the_lock_is_reported_when_settled_or_when_the_next_begins() -> None:
    t, rec = FakeTime(), Recorder()
    waits = BusyWaits("reader", rec, clock=t.clock, sleep=t.sleep)
    assert waits(0) and waits(1)  # two sleeps (1 + 2 ms), then the retry got the lock
    t.now += 1.0  # the statement ran; the time after the last retry is not a wait
    waits.settle()
    assert rec.events[-1] == ("ended", "reader", "acquired", "0.003")
    waits.settle()
    assert len([e for e in rec.events if e[0] == "ended"]) == 1
    assert waits(0)  # a new wait; the earlier one was already reported
    assert waits(0)  # a wait that was never settled is reported when the next begins
    assert [e for e in rec.events if e[0] in ("began", "ended")][-2:] == [
        ("ended", "reader", "acquired", "0.001"),
        ("began", "reader"),
    ]


def test_without_an_observer_it_still_waits_and_gives_up() -> None:
    t = FakeTime()
    waits = BusyWaits("writer", None, timeout_s=0.001, clock=t.clock, sleep=t.sleep)
    assert waits(0) and not waits(1)

"""The turn gate: queries never wait for a bulk batch; bulk never starts while a query waits or runs.

Every ordering below is forced with events and the gate's waiting counters, never by sleeping.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable

from backend.embed.gate import TurnGate

LIVENESS_S = 30.0
"""Only a deadlock would reach this: each join below completes at once when the gate is right."""


def _wait_until(pred: Callable[[], bool]) -> None:
    pause = threading.Event()
    for _ in range(int(LIVENESS_S / 0.001)):
        if pred():
            return
        pause.wait(0.001)
    raise AssertionError("condition not reached (a thread is stuck)")


def _holder(gate: TurnGate, *, urgent: bool) -> tuple[threading.Thread, threading.Event, threading.Event]:
    inside, release = threading.Event(), threading.Event()

    def hold() -> None:
        with gate.turn(urgent=urgent):
            inside.set()
            release.wait()

    t = threading.Thread(target=hold, name=f"t-hold-{'urgent' if urgent else 'bulk'}")
    t.start()
    inside.wait()
    return t, inside, release


def test_a_query_runs_while_a_bulk_batch_is_in_flight() -> None:
    gate = TurnGate()
    bulk, _, release = _holder(gate, urgent=False)
    seen: list[bool] = []

    def query() -> None:
        with gate.turn(urgent=True):
            seen.append(gate.bulk_busy)

    q = threading.Thread(target=query, name="t-query")
    q.start()
    q.join(LIVENESS_S)
    try:
        assert not q.is_alive(), "the query waited for the bulk batch"
        assert seen == [True]  # it ran while the batch still held its turn
    finally:
        release.set()
        bulk.join()
        q.join()


def test_bulk_does_not_start_while_a_query_runs() -> None:
    gate = TurnGate()
    order: list[str] = []
    query, _, release = _holder(gate, urgent=True)

    def bulk() -> None:
        with gate.turn(urgent=False):
            order.append("bulk")

    b = threading.Thread(target=bulk, name="t-bulk")
    b.start()
    _wait_until(lambda: gate.bulk_waiting == 1)
    order.append("query done")
    release.set()
    query.join()
    b.join()
    assert order == ["query done", "bulk"]


def test_waiting_query_goes_before_an_earlier_bulk_waiter() -> None:
    gate = TurnGate()
    order: list[str] = []
    first, _, release = _holder(gate, urgent=True)

    def bulk() -> None:
        with gate.turn(urgent=False):
            order.append("bulk")

    def query() -> None:
        with gate.turn(urgent=True):
            order.append("query")

    b = threading.Thread(target=bulk, name="t-bulk")
    b.start()  # queued first
    _wait_until(lambda: gate.bulk_waiting == 1)
    q = threading.Thread(target=query, name="t-query")
    q.start()
    _wait_until(lambda: gate.urgent_waiting == 1)
    release.set()
    for t in (first, b, q):
        t.join()
    assert order == ["query", "bulk"]
    assert not gate.busy and gate.urgent_waiting == 0 and gate.bulk_waiting == 0


def test_each_lane_is_exclusive() -> None:
    """At most one query and at most one bulk batch at a time (whether a bulk batch may start
    beside a query is the deterministic test above: checked from outside it would race)."""
    gate = TurnGate()
    lock = threading.Lock()
    inside = {"bulk": 0, "urgent": 0}
    violations: list[str] = []

    def work(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(300):
            urgent = rng.random() < 0.4
            lane = "urgent" if urgent else "bulk"
            with gate.turn(urgent=urgent):
                with lock:
                    inside[lane] += 1
                    if inside[lane] > 1:
                        violations.append(f"two {lane} turns at once")
                with lock:
                    inside[lane] -= 1

    threads = [threading.Thread(target=work, args=(k,), name=f"t-g{k}") for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert violations == []
    assert not gate.busy


def test_an_exception_inside_a_turn_releases_it() -> None:
    gate = TurnGate()
    for urgent in (True, False):
        try:
            with gate.turn(urgent=urgent):
                raise RuntimeError("boom")
        except RuntimeError:
            pass
        assert not gate.busy
    with gate.turn(urgent=False):
        assert gate.busy and gate.bulk_busy and not gate.urgent_busy

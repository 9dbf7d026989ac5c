"""The turn gate: exclusive turns; urgent waiters go before bulk waiters."""

from __future__ import annotations

import threading

from backend.embed.gate import TurnGate


def _wait_until(pred: object, stop: threading.Event) -> None:
    while not pred() and not stop.is_set():  # type: ignore[operator]
        stop.wait(0.001)


def test_urgent_waiter_goes_before_earlier_bulk_waiter() -> None:
    gate = TurnGate()
    order: list[str] = []
    holder_in, release = threading.Event(), threading.Event()
    never = threading.Event()

    def holder() -> None:
        with gate.turn(urgent=False):
            holder_in.set()
            release.wait()

    def bulk() -> None:
        with gate.turn(urgent=False):
            order.append("bulk")

    def query() -> None:
        with gate.turn(urgent=True):
            order.append("query")

    h = threading.Thread(target=holder, name="t-holder")
    h.start()
    holder_in.wait()
    b = threading.Thread(target=bulk, name="t-bulk")
    b.start()  # queued first
    q = threading.Thread(target=query, name="t-query")
    q.start()
    _wait_until(lambda: gate.urgent_waiting == 1, never)
    release.set()
    for t in (h, b, q):
        t.join()
    assert order == ["query", "bulk"]
    assert not gate.busy and gate.urgent_waiting == 0


def test_turns_are_exclusive() -> None:
    gate = TurnGate()
    inside = 0
    peak = 0
    lock = threading.Lock()

    def work(urgent: bool) -> None:
        nonlocal inside, peak
        for _ in range(200):
            with gate.turn(urgent=urgent):
                with lock:
                    inside += 1
                    peak = max(peak, inside)
                with lock:
                    inside -= 1

    threads = [threading.Thread(target=work, args=(k % 2 == 0,), name=f"t-g{k}") for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak == 1


def test_an_exception_inside_a_turn_releases_it() -> None:
    gate = TurnGate()
    try:
        with gate.turn(urgent=True):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert not gate.busy
    with gate.turn(urgent=False):
        assert gate.busy

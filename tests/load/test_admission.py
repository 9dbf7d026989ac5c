"""Pure parts of the backpressure: admitting a reconcile plan into the queue, and the bounded
dirty-path set of a watched folder."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from backend.watch.apply import admit
from backend.watch.coalesce import Pending
from backend.watch.reconcile import Plan

paths = st.lists(st.text(min_size=1, max_size=8), unique=True, max_size=30)


@given(add=paths, changed=paths, removed=paths, room=st.none() | st.integers(-3, 70))
def test_admit_keeps_a_prefix_within_room_and_counts_the_rest(
    add: list[str], changed: list[str], removed: list[str], room: int | None
) -> None:
    result = Plan(add=list(add), changed=list(changed), removed=list(removed))
    deferred = admit(result, room)
    kept = len(result.add) + len(result.changed)
    assert kept + deferred == len(add) + len(changed)
    if room is None:
        assert deferred == 0
    else:
        assert kept == min(max(0, room), len(add) + len(changed))
    # changed files go first, new files in their (path) order; removals never wait
    assert result.changed == changed[: len(result.changed)]
    assert result.add == add[: len(result.add)]
    assert not result.add or len(result.changed) == len(changed)
    assert result.removed == removed


def test_pending_overflows_into_a_full_rescan_and_resets() -> None:
    p = Pending(max_paths=3)
    for i in range(3):
        p.add(f"/f/{i}", is_dir=False, at=float(i))
    assert not p.overflowed and len(p.files) == 3
    p.add("/f/d", is_dir=True, at=3.0)
    assert p.overflowed and p.files == set() and p.dirs == set()
    p.add("/f/late", is_dir=False, at=4.0)  # later events only move the timestamps
    assert p.files == set() and bool(p) and p.first_at == 0.0 and p.last_at == 4.0
    assert p.ready(now=5.0, quiet_s=1.0, max_wait_s=10.0)
    assert p.take() == (set(), set())
    assert not p.overflowed and not p
    p.add("/f/next", is_dir=False, at=6.0)
    assert p.files == {"/f/next"}

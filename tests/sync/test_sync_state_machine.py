"""Two devices of one user and the gateway, under random operations and ≥ 20 % injected faults.

Hypothesis drives adds, edits, renames, deletes, offline periods, token expiry in the middle of
a run, and syncs on both devices while the gateway fails requests (5xx, 429, dropped
connections, and requests applied whose response is lost). When the faults stop and both
devices sync until nothing moves, the invariants are:

* both local indexes and the cloud hold the same documents, metadata and chunks (vectors too);
* nothing written is lost: every text a device wrote is still in some document, unless a
  device replaced or deleted it while holding it (a deliberate overwrite, not a sync loss);
  concurrent edits therefore survive as conflicted copies;
* no duplicates: every document is one the test created or a recorded conflicted copy, and the
  cloud holds exactly the local documents;
* the dead-letter tables are empty (all data was valid) and no outbox row is left.

Bounded for ``make test``: few examples, short programs, tiny texts (the real model embeds
them in milliseconds).
"""

from __future__ import annotations

import contextlib
import itertools
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from sync.errors import RemoteUnavailable
from tests.supabase_gateway import Fault, FaultPlan, Gateway
from tests.sync.devices import Device, cloud_snapshot, start_devices

pytestmark = pytest.mark.slow

WORDS = ["cats", "dogs", "rivers", "mountains", "databases", "sync", "vectors", "apples", "trains", "poems"]
STATS: list[dict[str, int]] = []
FAULTS = dict(server_error=0.07, rate_limit=0.05, drop=0.06, lost_response=0.07, retry_after_s=0)


def _text_of(dev: Device, doc_id: str) -> str | None:
    """The content a device currently holds for a document (its original file)."""
    with dev.sv.store.read() as c:
        row = c.execute("SELECT blob_key FROM documents WHERE id = ?", (doc_id,)).fetchone()
    if row is None or row[0] is None:
        return None
    return dev.sv.ingest.blobs.path_of(row[0]).read_text(encoding="utf-8")


def _comparable(snap: dict[str, dict[str, Any]]) -> dict[str, tuple[Any, ...]]:
    return {
        i: (d["filename"], d["title"], d["scope"], d["sha256"], d["mime"], d["size"], tuple(d["chunks"]))
        for i, d in snap.items()
    }


def make_machine(gateway: Gateway, devices: list[Device], admin_query: Any) -> type:
    counter = itertools.count()

    class SyncMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            n = next(counter)
            self.n = n
            gateway.faults.reset()
            email = f"sm-{n}-{np.random.default_rng().integers(1 << 30)}@example.com"
            self.user_id = gateway.create_user(email, "pw-pw-pw-pw")
            self.devices = devices
            for dev in devices:
                dev.wipe()
            for dev in self.devices:
                dev.sign_in(gateway, email, "pw-pw-pw-pw")
            self.created: set[str] = set()
            self.written: set[str] = set()
            self.superseded: set[str] = set()
            self.serial = itertools.count()
            self.syncs = 0
            self.seed = -1

        def _new_text(self, word: str) -> str:
            text = f"{word} note number {next(self.serial)} about {word}"
            self.written.add(text)
            return text

        def _forget(self, dev: Device, doc_id: str) -> None:
            held = _text_of(dev, doc_id)
            if held is not None:
                self.superseded.add(held)

        @initialize(seed=st.integers(0, 2**32 - 1), words=st.lists(st.sampled_from(WORDS), min_size=3, max_size=3))
        def shared_start(self, seed: int, words: list[str]) -> None:
            """Faults on; a few documents on both devices, synced once (so edits can collide)."""
            gateway.set_faults(FaultPlan(seed=seed, **FAULTS))  # type: ignore[arg-type]
            gateway.faults.counts.clear()
            self.seed = seed
            for d, word in zip((0, 0, 1), words, strict=True):
                self.add(d, word)
            for d in (0, 1, 0):
                self.sync(d)

        # -- local operations -------------------------------------------------------------
        @rule(d=st.integers(0, 1), word=st.sampled_from(WORDS))
        def add(self, d: int, word: str) -> None:
            dev = self.devices[d]
            self.created.add(dev.add(self._new_text(word), f"{word}.txt"))
            dev.wait_idle()

        @precondition(lambda self: any(dev.live_ids() for dev in self.devices))
        @rule(d=st.integers(0, 1), data=st.data(), word=st.sampled_from(WORDS))
        def edit(self, d: int, data: st.DataObject, word: str) -> None:
            dev = self.devices[d]
            ids = dev.live_ids()
            if not ids:
                return
            doc_id = data.draw(st.sampled_from(ids))
            self._forget(dev, doc_id)
            dev.edit(doc_id, self._new_text(word))
            dev.wait_idle()

        @precondition(lambda self: any(dev.live_ids() for dev in self.devices))
        @rule(d=st.integers(0, 1), data=st.data(), word=st.sampled_from(WORDS))
        def rename(self, d: int, data: st.DataObject, word: str) -> None:
            dev = self.devices[d]
            ids = dev.live_ids()
            if ids:
                dev.rename(data.draw(st.sampled_from(ids)), f"{word}-{next(self.serial)}.txt")

        @precondition(lambda self: any(dev.live_ids() for dev in self.devices))
        @rule(d=st.integers(0, 1), data=st.data())
        def delete(self, d: int, data: st.DataObject) -> None:
            dev = self.devices[d]
            ids = dev.live_ids()
            if ids:
                doc_id = data.draw(st.sampled_from(ids))
                self._forget(dev, doc_id)
                dev.delete(doc_id)

        # -- network -----------------------------------------------------------------------
        @rule(d=st.integers(0, 1))
        def toggle_network(self, d: int) -> None:
            self.devices[d].transport.online = not self.devices[d].transport.online

        @rule(d=st.integers(0, 1), after=st.integers(1, 12))
        def expire_token_mid_run(self, d: int, after: int) -> None:
            """The access token expires just before the n-th next request of this device."""

            def expire(request: Any) -> None:
                if not request.url.path.startswith("/auth/"):
                    gateway.clock.advance(3700)

            self.devices[d].transport.at_request(after, expire)

        @rule(d=st.integers(0, 1))
        def sync_now(self, d: int) -> None:
            self.sync(d)

        @rule(d=st.integers(0, 1))
        def sync(self, d: int) -> None:
            self.syncs += 1
            with contextlib.suppress(RemoteUnavailable):  # offline or too many faults: all stays queued
                self.devices[d].sync()

        @invariant()
        def nothing_dead_lettered(self) -> None:
            for dev in self.devices:
                assert dev.sv.sync.dead_letters(10, None) == []

        # -- convergence -------------------------------------------------------------------
        def teardown(self) -> None:
            observed = dict(gateway.faults.counts)
            gateway.faults.reset()
            try:
                for dev in self.devices:
                    dev.transport.online = True
                    dev.transport.clear_hooks()
                try:
                    self._converge()
                    self._check()
                except AssertionError as exc:  # shown even if hypothesis cannot replay it exactly
                    print(f"sync state machine example {self.n} failed: {exc}", file=sys.stderr)
                    raise
                total = sum(observed.values())
                faulted = total - observed.get(Fault.NONE, 0)
                STATS.append({"seed": self.seed, "requests": total, "faulted": faulted, "syncs": self.syncs,
                              "docs": len(a_docs := self.devices[0].live_ids()), "written": len(self.written),
                              "conflicts": sum(len(d.sv.sync.conflicts(500, None)) for d in self.devices)})  # fmt: skip
                del a_docs
            finally:
                gateway.faults.reset()

        def _converge(self) -> None:
            for _ in range(8):
                moved = 0
                for dev in self.devices:
                    dev.wait_idle()
                    report = dev.sync()
                    moved += report["pushed"] + report["pulled"] + report["deferred"] + len(report["copies"])
                quiet = all(dev.outbox_count() == 0 for dev in self.devices)
                if moved == 0 and quiet:
                    return
            raise AssertionError("the devices did not converge in 8 rounds")

        def _check(self) -> None:
            a, b = self.devices
            sa, sb = a.snapshot(), b.snapshot()
            assert _comparable(sa) == _comparable(sb)
            for doc_id in sa:
                for va, vb in zip(sa[doc_id]["vectors"], sb[doc_id]["vectors"], strict=True):
                    assert va is not None and vb is not None and np.allclose(va, vb, atol=1e-6)
            cloud = cloud_snapshot(admin_query, self.user_id)
            assert _comparable(cloud) == {i: v for i, v in _comparable(sa).items()}
            # nothing lost
            texts = set()
            for doc_id in sa:
                held = _text_of(a, doc_id)
                assert held is not None and held == _text_of(b, doc_id)
                texts.add(held)
            missing = self.written - self.superseded - texts
            assert not missing, f"lost: {missing}"
            # no duplicates: originals or recorded conflicted copies only
            copies = {c["copy_document_id"] for dev in self.devices for c in dev.sv.sync.conflicts(500, None)}
            assert set(sa) <= self.created | copies
            for dev in self.devices:
                assert dev.sv.sync.dead_letters(10, None) == []
                assert dev.outbox_count() == 0

    return SyncMachine


def test_two_devices_converge_under_faults(
    gateway: Gateway, device_factory: Callable[..., Device], admin_query: Any
) -> None:
    quick = {"sync_retry_attempts": 6, "sync_backoff_initial_s": 0.002, "sync_backoff_max_s": 0.02}
    machine = make_machine(gateway, start_devices(device_factory, "a", "b", **quick), admin_query)
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=8,
            stateful_step_count=35,
            deadline=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    # the fault plan injects 25 % faults; across all examples at least 20 % of requests met one
    assert FaultPlan(**FAULTS).fault_rate >= 0.2  # type: ignore[arg-type]
    requests, faulted = sum(s["requests"] for s in STATS), sum(s["faulted"] for s in STATS)
    assert requests > 150 and faulted / requests >= 0.18, STATS
    # the programs really exercised sync: documents on both sides, and conflicts somewhere
    assert sum(s["syncs"] for s in STATS) >= 40 and sum(s["conflicts"] for s in STATS) >= 1, STATS
    print(STATS)

"""The background worker: pending changes go up without being asked; a down server opens the
circuit breaker (no hammering) and work stays queued; a network change syncs at once."""

from __future__ import annotations

import time
from collections.abc import Callable

from sync.connectivity import ConnectivityWatch, Fingerprint
from tests.supabase_gateway import FaultPlan, Gateway
from tests.sync.conftest import Account
from tests.sync.devices import Device

AUTO = {"sync_auto": True, "sync_interval_s": 0.2, "sync_retry_attempts": 1, "sync_backoff_max_s": 30.0}


def _wait(pred: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise TimeoutError


def test_breaker_stops_hammering_and_a_network_change_resumes(
    gateway: Gateway, account: Account, device_factory: Callable[..., Device]
) -> None:
    interfaces: list[Fingerprint] = [frozenset({("wlan0", "192.168.1.20")})]
    dev = device_factory("auto", **AUTO)
    dev.sv.sync.watch = ConnectivityWatch(0.05, probe=lambda: interfaces[-1])
    dev.sign_in(gateway, account.email, account.password)
    _wait(lambda: (dev.sv.sync.sync_status()["last_success"] or {}).get("report") is not None)

    gateway.set_faults(FaultPlan(server_error=1.0, path_prefixes=("/rest/",)))  # the database is down
    doc = dev.add("Written while the server is down.", "down.txt")
    dev.wait_idle()
    _wait(lambda: dev.sv.sync.sync_status()["circuit"]["state"] == "open")  # three failed runs, unasked
    failing = len(gateway.requests("/rest/"))
    time.sleep(1.5)
    assert len(gateway.requests("/rest/")) == failing  # open: no request at all during the cool-down
    status = dev.sv.sync.sync_status()
    assert status["pending"] == 1 and status["last_error"]["error"]["kind"] == "transient"
    assert doc in dev.live_ids()

    gateway.faults.reset()  # the server is back, and the laptop joins another network
    interfaces.append(frozenset({("wlan0", "10.1.2.3")}))
    _wait(lambda: dev.sv.sync.sync_status()["pending"] == 0, timeout=10)  # well before the 30 s cool-down
    assert dev.sv.sync.sync_status()["circuit"]["state"] == "closed"


def test_offline_is_reported_and_nothing_is_lost(
    gateway: Gateway, account: Account, device_factory: Callable[..., Device]
) -> None:
    dev = device_factory("plane")
    dev.sign_in(gateway, account.email, account.password)
    dev.transport.online = False
    doc = dev.add("Notes typed on a plane.", "plane.txt")
    dev.wait_idle()
    try:
        dev.sync()
    except Exception as exc:
        assert type(exc).__name__ == "RemoteUnavailable"
    status = dev.sv.sync.sync_status()
    assert status["online"] is False and status["pending"] == 1
    dev.transport.online = True
    assert dev.sync()["pushed"] == 1
    assert dev.sv.sync.sync_status()["online"] is True and doc in dev.live_ids()


def test_stop_interrupts_a_run_between_requests_and_the_next_start_finishes_it(
    gateway: Gateway, account: Account, device_factory: Callable[..., Device], tmp_path: object
) -> None:
    import dataclasses
    import threading

    from sync.engine import EngineConfig
    from tests.supabase_gateway import FaultPlan

    dev = device_factory("stopper")
    dev.sign_in(gateway, account.email, account.password)
    ids = [dev.add(f"note {i} about stopping in the middle", f"s{i}.txt") for i in range(12)]
    dev.wait_idle()
    dev.sv.sync.config = dataclasses.replace(dev.sv.sync.config, engine=EngineConfig(push_docs_per_round=1))
    gateway.set_faults(FaultPlan(latency_s=0.15))
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(dev.sync())
        except Exception as exc:
            outcome.append(exc)

    pushes = len(gateway.requests("/rest/v1/rpc/sync_push"))
    worker = threading.Thread(target=run)
    worker.start()
    _wait(lambda: len(gateway.requests("/rest/v1/rpc/sync_push")) > pushes)
    dev.stop()  # returns after the request in flight; the rest of the run is abandoned
    worker.join()
    assert type(outcome[0]).__name__ == "Unavailable"
    gateway.faults.reset()
    dev.start()  # same data dir: the outbox picks up where the run stopped
    report = dev.sync()
    assert 0 < report["pushed"] < len(ids)
    with dev.sv.store.read() as c:
        assert c.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0
    assert sorted(dev.live_ids()) == sorted(ids)

"""Sync in the metrics, against the test gateway: a run that succeeds, one that fails while the
device is offline, sign-out; lag, pending and dead-letter gauges exist only while configured."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sync.errors import RemoteUnavailable
from tests.helpers.prom import Scrape
from tests.supabase_gateway import Gateway
from tests.sync.conftest import Account
from tests.sync.devices import Device


def _scrape(dev: Device) -> Scrape:
    return Scrape(dev.sv.metrics.render().decode())


def test_sync_runs_failures_and_lag_in_the_metrics(
    gateway: Gateway, account: Account, device_factory: Callable[..., Device]
) -> None:
    dev = device_factory("metrics")
    m = _scrape(dev)
    assert m.value("docsidecar_sync_enabled") == 0 and not m.has("docsidecar_sync_last_success_age_seconds")

    dev.sign_in(gateway, account.email, account.password)
    m = _scrape(dev)
    assert m.value("docsidecar_sync_enabled") == 1 and m.value("docsidecar_sync_signed_in") == 1
    assert not m.has("docsidecar_sync_last_success_age_seconds")  # configured, never succeeded yet

    dev.add("Pushed by the first run.", "first.txt")
    dev.wait_idle()
    assert _scrape(dev).value("docsidecar_sync_pending_documents") == 1
    assert dev.sync()["pushed"] == 1
    m = _scrape(dev)
    assert m.value("docsidecar_sync_runs_total", outcome="ok") == 1
    assert m.value("docsidecar_sync_run_duration_seconds_count", outcome="ok") == 1
    assert m.value("docsidecar_sync_pending_documents") == 0 and m.value("docsidecar_sync_dead_letters") == 0
    assert m.value("docsidecar_sync_conflicts") == 0 and m.value("docsidecar_sync_circuit_open") == 0
    assert (m.value("docsidecar_sync_last_success_age_seconds") or -1) >= 0

    dev.transport.online = False  # a plane: the run fails, the change stays queued
    dev.add("Written offline.", "offline.txt")
    dev.wait_idle()
    with pytest.raises(RemoteUnavailable):
        dev.sync()
    m = _scrape(dev)
    assert m.value("docsidecar_sync_runs_total", outcome="failed") == 1
    assert m.value("docsidecar_sync_failures_total", error_class="transient") == 1
    assert m.value("docsidecar_sync_pending_documents") == 1
    assert m.has("docsidecar_sync_last_success_age_seconds")  # still the first run's success

    dev.transport.online = True
    dev.sv.sync.sign_out()
    m = _scrape(dev)
    assert m.value("docsidecar_sync_enabled") == 0
    assert not m.has("docsidecar_sync_last_success_age_seconds") and not m.has("docsidecar_sync_pending_documents")
    assert m.value("docsidecar_sync_runs_total", outcome="ok") == 1  # counters keep their history

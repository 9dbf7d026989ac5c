"""Fault injection: 5xx, 429, dropped connections, lost responses (applied!), latency, seeds."""

from __future__ import annotations

import httpx
import pytest

from tests.supabase_gateway import Fault, FaultInjector, FaultPlan, Gateway
from tests.sync.conftest import SignedIn
from tests.sync.helpers import document_change, new_id


def _doc_exists(user: SignedIn, doc: str) -> bool:
    r = user.client.get("/rest/v1/documents", params={"select": "id", "id": f"eq.{doc}"})
    return r.json() == [{"id": doc}]


def test_server_error_and_rate_limit_do_not_apply(gateway: Gateway, alice: SignedIn) -> None:
    doc = new_id()
    body = {"p_changes": [document_change(doc, 1, "A")]}
    gateway.faults.script(Fault.SERVER_ERROR, "/rest/v1/rpc/sync_push", status=503)
    r = alice.client.post("/rest/v1/rpc/sync_push", json=body)
    assert r.status_code == 503 and r.json()["code"] == "PGRST001"
    gateway.faults.script(Fault.RATE_LIMIT, "/rest/v1/rpc/sync_push")
    r = alice.client.post("/rest/v1/rpc/sync_push", json=body)
    assert r.status_code == 429 and r.headers["Retry-After"] == "1"
    assert not _doc_exists(alice, doc)


def test_dropped_connection_does_not_apply(gateway: Gateway, alice: SignedIn) -> None:
    doc = new_id()
    gateway.faults.script(Fault.DROP, "/rest/v1/rpc/sync_push")
    with pytest.raises(httpx.RemoteProtocolError):
        alice.client.post("/rest/v1/rpc/sync_push", json={"p_changes": [document_change(doc, 1, "A")]})
    assert not _doc_exists(alice, doc)


def test_lost_response_is_applied_and_retry_is_idempotent(gateway: Gateway, alice: SignedIn) -> None:
    doc = new_id()
    body = {"p_changes": [document_change(doc, 1, "A")]}
    gateway.faults.script(Fault.LOST_RESPONSE, "/rest/v1/rpc/sync_push")
    with pytest.raises(httpx.RemoteProtocolError):
        alice.client.post("/rest/v1/rpc/sync_push", json=body)
    assert _doc_exists(alice, doc)  # committed although the client saw nothing
    retry = alice.client.post("/rest/v1/rpc/sync_push", json=body)
    assert retry.status_code == 200
    assert retry.json()["results"][0]["status"] == "accepted"
    assert [r.fault for r in gateway.requests("/rest/v1/rpc/sync_push")][-2:] == [
        Fault.LOST_RESPONSE,
        Fault.NONE,
    ]


def test_lost_refresh_response_is_recovered_within_reuse_window(gateway: Gateway, alice: SignedIn) -> None:
    token = str(alice.session["refresh_token"])
    gateway.faults.script(Fault.LOST_RESPONSE, "/auth/v1/token")
    with httpx.Client(base_url=gateway.url, headers={"apikey": gateway.anon_key}) as c:
        with pytest.raises(httpx.RemoteProtocolError):
            c.post(
                "/auth/v1/token",
                params={"grant_type": "refresh_token"},
                json={"refresh_token": token},
            )
        r = c.post("/auth/v1/token", params={"grant_type": "refresh_token"}, json={"refresh_token": token})
    assert r.status_code == 200


def test_random_plan_is_deterministic_per_seed() -> None:
    plan = FaultPlan(seed=42, server_error=0.1, rate_limit=0.05, drop=0.05, lost_response=0.1, jitter_s=0.01)
    runs = []
    for _ in range(2):
        injector = FaultInjector(plan)
        runs.append([injector.decide("POST", "/rest/v1/rpc/sync_push") for _ in range(500)])
    assert runs[0] == runs[1]
    faults = [d.fault for d in runs[0]]
    rate = sum(f is not Fault.NONE for f in faults) / len(faults)
    assert 0.2 <= rate <= 0.4  # 30 % configured
    assert {Fault.SERVER_ERROR, Fault.RATE_LIMIT, Fault.DROP, Fault.LOST_RESPONSE} <= set(faults)
    other = FaultInjector(FaultPlan(seed=43, server_error=0.3))
    assert [d.fault for d in (other.decide("GET", "/") for _ in range(50))] != faults[:50]


def test_path_prefixes_limit_where_faults_apply() -> None:
    injector = FaultInjector(FaultPlan(seed=1, drop=1.0, path_prefixes=("/storage/",)))
    assert injector.decide("GET", "/rest/v1/documents").fault is Fault.NONE
    assert injector.decide("GET", "/storage/v1/object/x").fault is Fault.DROP


def test_invalid_plans_are_refused() -> None:
    with pytest.raises(ValueError):
        FaultPlan(server_error=0.7, drop=0.5)
    with pytest.raises(ValueError):
        FaultPlan(latency_s=-1)


def test_random_faults_over_http(gateway: Gateway, alice: SignedIn) -> None:
    gateway.set_faults(
        FaultPlan(
            seed=7,
            server_error=0.2,
            rate_limit=0.1,
            drop=0.1,
            lost_response=0.1,
            path_prefixes=("/rest/v1/rpc/sync_pull",),
        )
    )
    outcomes = []
    for _ in range(40):
        try:
            outcomes.append(alice.client.post("/rest/v1/rpc/sync_pull", json={}).status_code)
        except httpx.RemoteProtocolError:
            outcomes.append(0)
    assert 200 in outcomes and 0 in outcomes and 429 in outcomes
    assert any(s >= 500 for s in outcomes)
    gateway.faults.reset()
    assert alice.client.post("/rest/v1/rpc/sync_pull", json={}).status_code == 200

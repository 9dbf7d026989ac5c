"""The one retry policy: how each Supabase failure is classified, what is retried (with
backoff, honouring Retry-After) and what is dead-lettered instead (never dropped, never
retried forever)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sync.errors import SupabaseError
from sync.supabase.retry import RetryPolicy, backoff_delay, classify
from tests.supabase_gateway import Fault, FaultPlan, Gateway
from tests.sync.client_fixtures import Sleeps, connect
from tests.sync.conftest import Account
from tests.sync.devices import Device

REST = "rest"


@pytest.mark.parametrize(
    ("service", "status", "body", "kind"),
    [
        (REST, 503, {"code": "PGRST001", "message": "Database client error"}, "transient"),
        (REST, 503, {"code": "PGRST000", "message": "schema cache"}, "transient"),
        (REST, 504, {"code": "PGRST003", "message": "pool timeout"}, "transient"),
        (REST, 500, {"code": "57014", "message": "canceling statement due to statement timeout"}, "transient"),
        (REST, 429, {"message": "Too Many Requests"}, "transient"),
        (REST, 408, None, "transient"),
        (REST, 502, "<html>Bad Gateway</html>", "transient"),
        (REST, 401, {"code": "PGRST303", "message": "JWT expired"}, "auth_expired"),
        (REST, 401, {"code": "PGRST301", "message": "JWSError"}, "auth_expired"),
        (REST, 400, {"code": "22P02", "message": "invalid input syntax for type uuid"}, "permanent"),
        (REST, 400, {"code": "22023", "message": "invalid pull cursor"}, "permanent"),
        (REST, 409, {"code": "23505", "message": "duplicate key value"}, "permanent"),
        (REST, 400, {"code": "23514", "message": "violates check constraint"}, "permanent"),
        (REST, 403, {"code": "42501", "message": "new row violates row-level security policy"}, "permanent"),
        (REST, 404, {"code": "PGRST202", "message": "Could not find the function"}, "permanent"),
        (REST, 400, {"code": "PGRST102", "message": "Empty or invalid json"}, "permanent"),
        # Storage: HTTP 400 for nearly everything; the real status is in the body
        ("storage", 400, {"statusCode": "409", "code": "KeyAlreadyExists", "error": "Duplicate"}, "exists"),
        ("storage", 400, {"statusCode": "404", "code": "NoSuchKey", "message": "Object not found"}, "not_found"),
        ("storage", 400, {"statusCode": "400", "code": "InvalidKey", "message": "Invalid key: é"}, "permanent"),
        ("storage", 400, {"statusCode": "413", "code": "EntityTooLarge", "message": "too large"}, "permanent"),
        (
            "storage",
            400,
            {"statusCode": "403", "code": "AccessDenied", "message": "new row violates row-level security policy"},
            "permanent",
        ),
        (
            "storage",
            400,
            {"statusCode": "403", "code": "AccessDenied", "message": '"exp" claim timestamp check failed'},
            "auth_expired",
        ),
        ("storage", 400, {"statusCode": "400", "code": "InvalidJWT", "message": "jwt expired"}, "auth_expired"),
        ("storage", 429, {"statusCode": "429", "code": "SlowDown", "message": "reduce your rate"}, "transient"),
        ("storage", 500, {"statusCode": "500", "code": "InternalError", "message": "Internal"}, "transient"),
        ("storage", 400, {"statusCode": "423", "code": "ResourceLocked", "message": "locked"}, "transient"),
        ("storage", 400, {"statusCode": "544", "code": "DatabaseTimeout", "message": "timeout"}, "transient"),
        ("tus", 409, {"statusCode": "409", "code": "KeyAlreadyExists", "message": "exists"}, "exists"),
        ("auth", 400, {"code": "refresh_token_already_used", "message": "Already Used"}, "signed_out"),
        ("auth", 400, {"code": "refresh_token_not_found", "message": "Not Found"}, "signed_out"),
        ("auth", 403, {"code": "session_not_found", "message": "Session does not exist"}, "signed_out"),
        ("auth", 400, {"code": 400, "error_code": "session_expired", "msg": "expired"}, "signed_out"),
        ("auth", 400, {"code": "invalid_credentials", "message": "Invalid login credentials"}, "permanent"),
        ("auth", 429, {"code": "over_request_rate_limit", "message": "rate limit"}, "transient"),
        ("auth", 503, {"message": "upstream"}, "transient"),
    ],
)
def test_classification(service: str, status: int, body: Any, kind: str) -> None:
    error = classify(service, status, body, {})
    assert error is not None and error.kind == kind


def test_success_is_not_an_error() -> None:
    assert classify(REST, 200, None) is None and classify("storage", 204, None) is None


def test_retry_after_header_and_backoff_bounds() -> None:
    err = classify(REST, 429, {"message": "slow down"}, {"retry-after": "7"})
    assert err is not None and err.retry_after == 7.0
    policy = RetryPolicy(max_attempts=5, backoff_initial_s=0.5, backoff_max_s=4.0, retry_after_max_s=10.0)
    for failures in range(1, 8):
        delay = backoff_delay(policy, failures)
        assert 0.5 <= delay <= 4.0
    assert backoff_delay(policy, 1, retry_after=7.0) == 7.0  # the server's wish wins when longer
    assert backoff_delay(policy, 1, retry_after=600.0) == 10.0  # bounded by the policy


@pytest.mark.parametrize("fault", [Fault.SERVER_ERROR, Fault.RATE_LIMIT, Fault.DROP, Fault.LOST_RESPONSE])
def test_transient_failures_are_retried(gateway: Gateway, account: Account, tmp_path: Path, fault: Fault) -> None:
    sleeps = Sleeps()
    remote, _ = connect(gateway, account.email, account.password, tmp_path, sleep=sleeps)
    gateway.set_faults(FaultPlan(retry_after_s=1))
    for _ in range(2):
        gateway.faults.script(fault, "/rest/v1/rpc/sync_pull", status=503)
    mark = len(gateway.log)
    rows, _, _ = remote.pull(None, 10)
    assert rows == []
    assert [r.fault for r in gateway.log[mark:]] == [fault, fault, Fault.NONE]
    assert len(sleeps.delays) == 2
    if fault is Fault.RATE_LIMIT:
        assert all(d >= 1.0 for d in sleeps.delays)  # Retry-After: 1 honoured
    remote.close()


def test_retries_are_bounded(gateway: Gateway, account: Account, tmp_path: Path) -> None:
    remote, _ = connect(gateway, account.email, account.password, tmp_path, sleep=Sleeps())
    gateway.set_faults(FaultPlan(server_error=1.0, path_prefixes=("/rest/",)))
    mark = len(gateway.log)
    with pytest.raises(SupabaseError) as err:
        remote.pull(None, 10)
    assert err.value.kind == "transient"
    assert len(gateway.log[mark:]) == remote.http.policy.max_attempts
    remote.close()


def test_permanent_errors_are_not_retried(gateway: Gateway, account: Account, tmp_path: Path) -> None:
    remote, _ = connect(gateway, account.email, account.password, tmp_path, sleep=Sleeps())
    mark = len(gateway.log)
    with pytest.raises(SupabaseError) as err:
        remote.pull("not-a-cursor", 10)
    assert err.value.kind == "permanent" and err.value.remote_code == "22023"
    assert len(gateway.log[mark:]) == 1
    remote.close()


# -- dead letters through a real sidecar ---------------------------------------------------------
def _push_requests(gw: Gateway) -> int:
    return len(gw.requests("/rest/v1/rpc/sync_push"))


def test_rejected_change_is_dead_lettered_not_retried_not_dropped(
    gateway: Gateway, account: Account, device_factory: Callable[..., Device]
) -> None:
    dev = device_factory("solo")
    dev.sign_in(gateway, account.email, account.password)
    ok = dev.add("A perfectly fine note about cats.", "fine.txt")
    bad = dev.add("A note whose title the server refuses.", "bad.txt")
    dev.wait_idle()
    dev.sv.store.write(lambda c: c.execute("UPDATE documents SET title = ? WHERE id = ?", ("t" * 2500, bad)))
    report = dev.sync()
    assert report["pushed"] == 1 and report["dead_letters"] == 1
    letters = dev.sv.sync.dead_letters(10, None)
    assert [(x["document_id"], x["stage"], x["code"]) for x in letters] == [(bad, "push", "23514")]
    assert dev.outbox_count() == 0 and bad in dev.live_ids()  # kept locally, out of the queue
    status = dev.sv.sync.sync_status()
    assert status["dead_letters"] == 1 and status["pending"] == 0
    before = _push_requests(gateway)
    dev.sync()
    assert _push_requests(gateway) == before  # not retried by itself
    # the user fixes the title and asks again: a new version goes up
    dev.sv.store.write(lambda c: c.execute("UPDATE documents SET title = 'fixed' WHERE id = ?", (bad,)))
    dev.sv.sync.retry_dead_letter(letters[0]["id"])
    report = dev.sync()
    assert report["pushed"] == 1 and dev.sv.sync.dead_letters(10, None) == []
    assert {ok, bad} <= {r["id"] for r in _cloud_docs(gateway, account)}


def _cloud_docs(gw: Gateway, account: Account) -> list[dict[str, Any]]:
    import httpx

    with httpx.Client(base_url=gw.url, headers={"apikey": gw.anon_key}) as c:
        s = c.post("/auth/v1/token", params={"grant_type": "password"},
                   json={"email": account.email, "password": account.password}).json()  # fmt: skip
        r = c.get("/rest/v1/documents", params={"select": "id,title"},
                  headers={"Authorization": f"Bearer {s['access_token']}"})  # fmt: skip
    return list(r.json())


def test_storage_rejection_is_dead_lettered_at_the_upload_stage(
    gateway: Gateway, account: Account, device_factory: Callable[..., Device], admin_query: Any
) -> None:
    dev = device_factory("solo")
    dev.sign_in(gateway, account.email, account.password)
    doc = dev.add("This file is larger than the bucket allows. " * 10, "big.txt")
    dev.wait_idle()
    admin_query("update storage.buckets set file_size_limit = 64 where id = 'documents'")
    try:
        report = dev.sync()
    finally:
        admin_query("update storage.buckets set file_size_limit = null where id = 'documents'")
    assert report["dead_letters"] == 1 and report["pushed"] == 0
    [letter] = dev.sv.sync.dead_letters(10, None)
    assert (letter["document_id"], letter["stage"], letter["code"]) == (doc, "upload", "EntityTooLarge")
    assert letter["detail"]["http_status"] == 400  # Storage's HTTP 400 with the real code in the body
    dev.sv.sync.retry_dead_letter(letter["id"])
    assert dev.sync()["pushed"] == 1

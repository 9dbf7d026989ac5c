"""The sync endpoints through the real app (ASGI client, services started by the lifespan):
session in and out, status, run, dead letters, conflicts, share URLs; bad input → clear 4xx
that changes nothing."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient

from backend.app import create_app
from backend.services import Services
from backend.settings import Settings
from tests.conftest import TEST_PORT, TEST_TOKEN
from tests.supabase_gateway import Gateway
from tests.sync.conftest import Account
from tests.sync.devices import FAST_SYNC

pytestmark = pytest.mark.anyio

Client = AsyncTestClient  # type: ignore[type-arg]


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Any]:
    settings = Settings.load({}, {"data_dir": tmp_path / "data", **FAST_SYNC})
    services = Services(settings)
    app = create_app(settings, services, port=TEST_PORT, token=TEST_TOKEN)
    async with AsyncTestClient(app, base_url=f"http://127.0.0.1:{TEST_PORT}", raise_server_exceptions=False) as c:
        c.headers["Authorization"] = f"Bearer {TEST_TOKEN}"
        c.services = services  # type: ignore[attr-defined]
        yield c


async def _upload(c: Any, name: str, data: bytes) -> str:
    r = await c.post("/v1/documents", files={"file": (name, data)})
    assert r.status_code == 202, r.text
    doc_id = str(r.json()["document"]["id"])
    for _ in range(600):
        job = (await c.get(f"/v1/jobs/{r.json()['job_id']}")).json()
        if job["state"] in ("done", "failed"):
            return doc_id
        await asyncio.sleep(0.05)
    raise TimeoutError


def _password_body(gw: Gateway, account: Account, **extra: Any) -> dict[str, Any]:
    return {"supabase_url": gw.url, "anon_key": gw.anon_key, "email": account.email, "password": account.password,
            **extra}  # fmt: skip


async def test_without_a_session_sync_is_disabled(api: Any) -> None:
    status = (await api.get("/v1/sync/status")).json()
    assert status["enabled"] is False and status["state"] == "disabled" and status["signed_in"] is False
    r = await api.post("/v1/sync/run")
    assert r.status_code == 409 and r.json()["error"] == "sync_not_configured"
    doc_id = await _upload(api, "a.txt", b"local only, for now")
    r = await api.post(f"/v1/documents/{doc_id}/share-url", json={"expires_in": 60})
    assert r.status_code == 409 and r.json()["error"] == "sync_not_configured"
    r = await api.post("/v1/documents/no-such-doc/share-url", json={"expires_in": 60})
    assert r.status_code == 404
    assert (await api.get("/v1/sync/dead-letters")).json() == {"items": [], "next_before": None}
    assert (await api.get("/v1/sync/conflicts")).json() == {"items": [], "next_before": None}
    assert (await api.get("/v1/sync/status")).json()["pending"] == 1  # queued for when sync is on


async def test_sign_in_sync_share_and_sign_out(api: Any, gateway: Gateway, account: Account) -> None:
    services: Services = api.services
    r = await api.post("/v1/sync/session", json=_password_body(gateway, account))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["signed_in"] and body["session"]["email"] == account.email
    assert "refresh_token" not in r.text and "access_token" not in r.text
    session_file = services.settings.data_dir / "sync" / "session.json"
    assert stat.S_IMODE(os.stat(session_file).st_mode) == 0o600
    content = b"The quarterly report says sales of cat food doubled."
    doc_id = await _upload(api, "report.txt", content)

    r = await api.post(f"/v1/documents/{doc_id}/share-url", json={"expires_in": 600})
    assert r.status_code == 409 and r.json()["error"] == "not_synced"  # clear error before the first push

    r = await api.post("/v1/sync/run")
    assert r.status_code == 200, r.text
    assert r.json()["report"]["pushed"] == 1 and r.json()["status"]["pending"] == 0
    status = (await api.get("/v1/sync/status")).json()
    assert status["online"] is True and status["last_success"] is not None and status["last_error"] is None

    signs = len(gateway.requests("/storage/v1/object/sign/"))
    first = (await api.post(f"/v1/documents/{doc_id}/share-url", json={"expires_in": 600})).json()
    again = (await api.post(f"/v1/documents/{doc_id}/share-url", json={"expires_in": 600})).json()
    assert first["cached"] is False and again["cached"] is True and again["url"] == first["url"]
    assert len(gateway.requests("/storage/v1/object/sign/")) == signs + 1  # asked twice, signed once
    other = (await api.post(f"/v1/documents/{doc_id}/share-url", json={"expires_in": 30})).json()
    assert other["cached"] is False and other["expires_in"] == 30
    async with httpx.AsyncClient() as outside:  # the URL works for anyone, without our token
        fetched = await outside.get(first["url"])
    assert fetched.status_code == 200 and fetched.content == content

    events = [e.type for e in services.events.since(0)[0]]
    assert {"sync.session", "sync.started", "sync.completed"} <= set(events)

    r = await api.delete("/v1/sync/session")
    assert r.status_code == 200 and r.json()["enabled"] is False
    assert not session_file.exists()
    assert (await api.get(f"/v1/documents/{doc_id}")).status_code == 200  # local data kept
    assert (await api.post("/v1/sync/run")).status_code == 409


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"supabase_url": "ftp://example.com"}, 422, "validation_failed"),
        ({"supabase_url": "http://example.com"}, 422, "validation_failed"),  # plain http only on loopback
        ({"supabase_url": "https://x.supabase.co/rest/v1"}, 422, "validation_failed"),
        ({"anon_key": ""}, 422, "validation_failed"),
        ({"access_token": "abc", "refresh_token": "def"}, 422, "validation_failed"),  # tokens and password
        ({"email": None, "password": None}, 422, "validation_failed"),
        ({"password": "wrong password"}, 400, "sync_auth_failed"),
        ({"surprise": 1}, 422, "validation_failed"),  # unknown field: parsed but invalid, like ValidationFailed
    ],
)
async def test_bad_session_requests_change_nothing(
    api: Any, gateway: Gateway, account: Account, change: dict[str, Any], status: int, code: str | None
) -> None:
    body = {k: v for k, v in {**_password_body(gateway, account), **change}.items() if v is not None}
    r = await api.post("/v1/sync/session", json=body)
    assert r.status_code == status, r.text
    assert set(r.json()) == {"error", "message", "detail"}
    if code:
        assert r.json()["error"] == code
    assert (await api.get("/v1/sync/status")).json()["enabled"] is False
    assert not (api.services.settings.data_dir / "sync" / "session.json").exists()


async def test_malformed_bodies(api: Any) -> None:
    r = await api.post("/v1/sync/session", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    r = await api.post("/v1/sync/session", content=b"x", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415
    for bad in ({"expires_in": 0}, {"expires_in": 10**9}, {"expires_in": "soon"}):
        r = await api.post("/v1/documents/whatever/share-url", json=bad)
        assert r.status_code in (400, 422), (bad, r.status_code)


async def test_session_from_the_apps_tokens(api: Any, gateway: Gateway, account: Account) -> None:
    tokens = gateway.sign_in(account.user_id)
    body = {"supabase_url": gateway.url, "anon_key": gateway.anon_key,
            "access_token": tokens["access_token"], "refresh_token": tokens["refresh_token"]}  # fmt: skip
    r = await api.post("/v1/sync/session", json=body)
    assert r.status_code == 200 and r.json()["session"]["user_id"] == account.user_id
    # an expired access token from the app is fine while its refresh token is good
    stale = gateway.sign_in(account.user_id)
    gateway.clock.advance(7200)
    body.update(access_token=stale["access_token"], refresh_token=stale["refresh_token"])
    r = await api.post("/v1/sync/session", json=body)
    assert r.status_code == 200, r.text
    body.update(refresh_token="not-a-real-token")
    r = await api.post("/v1/sync/session", json=body)
    assert r.status_code == 400 and r.json()["error"] == "sync_auth_failed"
    assert (await api.get("/v1/sync/status")).json()["signed_in"] is True  # the previous session stays


async def test_revoked_session_surfaces_as_signed_out(api: Any, gateway: Gateway, account: Account) -> None:
    assert (await api.post("/v1/sync/session", json=_password_body(gateway, account))).status_code == 200
    access = api.services.sync.remote.manager.session.access_token
    async with httpx.AsyncClient(base_url=gateway.url, headers={"apikey": gateway.anon_key}) as c:
        assert (await c.post("/auth/v1/logout", headers={"Authorization": f"Bearer {access}"})).status_code == 204
    gateway.clock.advance(3700)
    doc_id = await _upload(api, "kept.txt", b"written while the session was being revoked")
    r = await api.post("/v1/sync/run")
    assert r.status_code == 409 and r.json()["error"] == "sync_signed_out"
    status = (await api.get("/v1/sync/status")).json()
    assert status["signed_in"] is False and status["session"]["signed_out_reason"]
    assert status["pending"] == 1 and status["state"] == "degraded"  # the local change waits
    assert (await api.get(f"/v1/documents/{doc_id}")).status_code == 200
    events = [e.type for e in api.services.events.since(0)[0]]
    assert "sync.signed_out" in events
    # signing in again picks the queue up
    assert (await api.post("/v1/sync/session", json=_password_body(gateway, account))).status_code == 200
    assert (await api.post("/v1/sync/run")).json()["report"]["pushed"] == 1


async def test_on_demand_original_is_fetched_when_asked_for(
    tmp_path: Path, gateway: Gateway, account: Account, device_factory: Any
) -> None:
    a = device_factory("origin")
    a.sign_in(gateway, account.email, account.password)
    text = "Minutes of the meeting: the cat committee approved more naps."
    doc_id = a.add(text, "minutes.txt")
    a.wait_idle()
    a.sync()
    settings = Settings.load({}, {"data_dir": tmp_path / "lazy", **FAST_SYNC, "sync_download": "on_demand"})
    services = Services(settings)
    app = create_app(settings, services, port=TEST_PORT, token=TEST_TOKEN)
    async with AsyncTestClient(app, base_url=f"http://127.0.0.1:{TEST_PORT}", raise_server_exceptions=False) as c:
        c.headers["Authorization"] = f"Bearer {TEST_TOKEN}"
        assert (await c.post("/v1/sync/session", json=_password_body(gateway, account))).status_code == 200
        report = (await c.post("/v1/sync/run")).json()["report"]
        assert report["pulled"] == 1 and report["downloads"] == 0  # chunks and vectors, not the file
        doc = (await c.get(f"/v1/documents/{doc_id}")).json()
        assert doc["source"] == "remote" and doc["status"] == "synced"
        r = await c.get(f"/v1/documents/{doc_id}/content")
        assert r.status_code == 200 and r.content == text.encode()
        downloads = len(gateway.requests("/storage/v1/object/authenticated/"))
        assert (await c.get(f"/v1/documents/{doc_id}/content")).content == text.encode()
        assert len(gateway.requests("/storage/v1/object/authenticated/")) == downloads  # now local


async def test_a_project_without_the_sync_schema_is_named_as_such(api: Any, pg_cluster: Any, tmp_path: Path) -> None:
    """Forgot to apply sync/migrations: the run says so instead of failing vaguely."""
    from tests.supabase_gateway import GatewayConfig

    db = pg_cluster.create_database("nomig")
    with pg_cluster.connect(db, autocommit=True) as conn:
        conn.execute("drop function public.sync_push(jsonb), public.sync_pull(text, integer)")
    gw = Gateway(GatewayConfig(database_uri=pg_cluster.uri(db, "authenticator"), admin_uri=pg_cluster.uri(db)))
    gw.start()
    try:
        gw.create_user("bare@example.com", "pw-pw-pw-pw")
        body = {"supabase_url": gw.url, "anon_key": gw.anon_key, "email": "bare@example.com", "password": "pw-pw-pw-pw"}
        assert (await api.post("/v1/sync/session", json=body)).status_code == 200
        r = await api.post("/v1/sync/run")
        assert r.status_code == 502 and r.json()["error"] == "sync_schema_missing"
        assert "sync/migrations" in r.json()["message"]
    finally:
        gw.stop()
        pg_cluster.drop_database(db)

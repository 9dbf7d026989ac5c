"""Auth emulation: password grant, rotating single-use refresh tokens, reuse window, expiry."""

from __future__ import annotations

import httpx
import jwt

from tests.supabase_gateway import Gateway
from tests.sync.conftest import SignedIn


def _refresh(gw: Gateway, token: str) -> httpx.Response:
    with httpx.Client(base_url=gw.url, headers={"apikey": gw.anon_key}) as c:
        return c.post("/auth/v1/token", params={"grant_type": "refresh_token"}, json={"refresh_token": token})


def test_password_grant_issues_supabase_shaped_session(gateway: Gateway, alice: SignedIn) -> None:
    session = alice.session
    assert session["token_type"] == "bearer"
    assert session["expires_in"] == 3600
    claims = jwt.decode(str(session["access_token"]), options={"verify_signature": False})
    assert claims["sub"] == alice.user_id
    assert claims["role"] == "authenticated" and claims["aud"] == "authenticated"
    assert claims["exp"] == session["expires_at"]
    assert {"iat", "session_id", "email", "aal", "amr", "is_anonymous"} <= set(claims)
    r = alice.client.get("/auth/v1/user")
    assert r.status_code == 200 and r.json()["id"] == alice.user_id


def test_wrong_password_and_missing_apikey(gateway: Gateway, alice: SignedIn) -> None:
    with httpx.Client(base_url=gateway.url) as c:
        r = c.post(
            "/auth/v1/token",
            params={"grant_type": "password"},
            json={"email": alice.email, "password": "nope"},
        )
        assert r.status_code == 401 and r.json() == {"message": "No API key found in request"}
        r = c.post(
            "/auth/v1/token",
            params={"grant_type": "password"},
            headers={"apikey": gateway.anon_key},
            json={"email": alice.email, "password": "nope"},
        )
        assert r.status_code == 400
        assert r.json() == {"code": "invalid_credentials", "message": "Invalid login credentials"}
        assert r.headers["x-sb-error-code"] == "invalid_credentials"


def test_refresh_rotates_and_reuse_window_returns_the_active_token(gateway: Gateway, alice: SignedIn) -> None:
    first = str(alice.session["refresh_token"])
    r1 = _refresh(gateway, first)
    assert r1.status_code == 200
    second = r1.json()["refresh_token"]
    assert second != first
    # The response was "lost": the client retries the old token within 10 s and gets the
    # session's active token instead of a revocation.
    retry = _refresh(gateway, first)
    assert retry.status_code == 200 and retry.json()["refresh_token"] == second
    r2 = _refresh(gateway, second)
    assert r2.status_code == 200


def test_reuse_outside_the_window_revokes_the_session(gateway: Gateway, alice: SignedIn) -> None:
    first = str(alice.session["refresh_token"])
    second = _refresh(gateway, first).json()["refresh_token"]
    gateway.clock.advance(11)
    r = _refresh(gateway, first)
    assert r.status_code == 400
    assert r.json() == {
        "code": "refresh_token_already_used",
        "message": "Invalid Refresh Token: Already Used",
    }
    # The whole session is gone: the child token is dead too, and so is the access token's session.
    r = _refresh(gateway, second)
    assert r.status_code == 400 and r.json()["code"] == "refresh_token_not_found"
    r = alice.client.get("/auth/v1/user")
    assert r.status_code == 403 and r.json()["code"] == "session_not_found"


def test_expired_access_token_gives_pgrst303_then_refresh_recovers(gateway: Gateway, alice: SignedIn) -> None:
    gateway.clock.advance(3601)
    r = alice.client.post("/rest/v1/rpc/sync_pull", json={})
    assert r.status_code == 401
    assert r.json() == {"code": "PGRST303", "details": None, "hint": None, "message": "JWT expired"}
    assert 'error="invalid_token"' in r.headers["www-authenticate"]
    r = alice.client.get("/storage/v1/object/authenticated/documents/x/y")
    assert r.status_code == 400 and r.json()["code"] == "AccessDenied"
    assert r.json()["statusCode"] == "403"
    fresh = _refresh(gateway, str(alice.session["refresh_token"]))
    assert fresh.status_code == 200
    r = alice.client.post(
        "/rest/v1/rpc/sync_pull",
        json={},
        headers={"Authorization": f"Bearer {fresh.json()['access_token']}"},
    )
    assert r.status_code == 200


def test_bad_tokens(gateway: Gateway, alice: SignedIn) -> None:
    forged = jwt.encode(
        {"sub": alice.user_id, "role": "authenticated", "exp": 2**40},
        "not-the-secret-not-the-secret-not-the-secret",
        algorithm="HS256",
    )
    for token in (forged, "abc", "a.b.c"):
        r = alice.client.post("/rest/v1/rpc/sync_pull", json={}, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401 and r.json()["code"] == "PGRST301", r.text
    r = _refresh(gateway, "never-issued")
    assert r.status_code == 400 and r.json()["code"] == "refresh_token_not_found"


def test_logout_ends_the_session(gateway: Gateway, alice: SignedIn) -> None:
    r = alice.client.post("/auth/v1/logout", params={"scope": "local"})
    assert r.status_code == 204
    r = _refresh(gateway, str(alice.session["refresh_token"]))
    assert r.status_code == 400 and r.json()["code"] == "refresh_token_not_found"

"""Turning what the user gives us into a :class:`sync.session.Session` (network, on request only).

* tokens from the desktop app's own sign-in (``access_token`` + ``refresh_token``): checked with
  ``GET /auth/v1/user``; an expired access token is refreshed first. The sidecar then owns the
  session — the app must not refresh the same refresh token again (single use: the second
  refresh would revoke the session).
* email + password: the password grant.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import time
import urllib.parse
from typing import Any

import httpx

from backend.errors import ValidationFailed
from sync.errors import SupabaseError, SyncAuthFailed
from sync.session import Session, session_from_grant
from sync.supabase.auth import AuthClient
from sync.supabase.http import SupabaseHttp
from sync.supabase.retry import RetryPolicy

MAX_KEY_LEN = 8192


def check_url(raw: str) -> str:
    """``https://<project>.supabase.co`` (any https origin), or plain http on a loopback address
    (the Supabase CLI's local stack). No path, query or credentials."""
    url = (raw or "").strip().rstrip("/")
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    problem = None
    if parts.scheme not in ("http", "https") or not host:
        problem = "supabase_url must be an http(s) URL"
    elif parts.username or parts.password or parts.query or parts.fragment or parts.path not in ("", "/"):
        problem = "supabase_url must be the project origin only (no path, query or credentials)"
    elif parts.scheme == "http" and not _loopback(host):
        problem = "plain http is only allowed for a local Supabase on 127.0.0.1/localhost; use https"
    if problem:
        raise ValidationFailed(problem, detail={"field": "supabase_url"})
    return url


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_token(value: str, field: str) -> str:
    token = (value or "").strip()
    if not token or len(token) > MAX_KEY_LEN or not token.isascii() or any(c.isspace() for c in token):
        raise ValidationFailed(f"{field} must be a non-empty ASCII token", detail={"field": field})
    return token


def jwt_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, unverified (the server verifies; we only read ``exp``/``sub``)."""
    try:
        payload = token.split(".")[1]
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError) as exc:
        raise ValidationFailed("access_token is not a JWT", detail={"field": "access_token"}) from exc
    if not isinstance(data, dict):
        raise ValidationFailed("access_token is not a JWT", detail={"field": "access_token"})
    return data


def _client(url: str, anon_key: str, policy: RetryPolicy, transport: httpx.BaseTransport | None) -> SupabaseHttp:
    return SupabaseHttp(url, anon_key, policy, transport=transport)


def sign_in_password(
    url: str,
    anon_key: str,
    email: str,
    password: str,
    policy: RetryPolicy,
    transport: httpx.BaseTransport | None = None,
) -> Session:
    http = _client(url, anon_key, policy, transport)
    try:
        grant = AuthClient(http).password(email, password)
    finally:
        http.close()
    return session_from_grant(url, anon_key, grant, time.time())


def adopt_tokens(
    url: str,
    anon_key: str,
    access_token: str,
    refresh_token: str,
    policy: RetryPolicy,
    transport: httpx.BaseTransport | None = None,
) -> Session:
    claims = jwt_claims(access_token)
    http = _client(url, anon_key, policy, transport)
    auth = AuthClient(http)
    try:
        try:
            user = auth.user(access_token)
        except SupabaseError as exc:
            if exc.kind not in ("auth_expired", "signed_out"):
                raise _auth_failed(exc) from exc
            try:  # expired access token: the refresh token may still be good
                grant = auth.refresh(refresh_token)
            except SupabaseError as exc2:
                raise _auth_failed(exc2) from exc2
            return session_from_grant(url, anon_key, grant, time.time())
    finally:
        http.close()
    now = time.time()
    exp = claims.get("exp")
    iat = claims.get("iat")
    if isinstance(exp, int | float) and isinstance(iat, int | float) and exp > iat:
        expires_at = min(float(exp), now + float(exp - iat))  # bounded by the token's own lifetime
    else:
        expires_at = now + 300.0
    return Session(
        supabase_url=url,
        anon_key=anon_key,
        user_id=str(user["id"]),
        email=user.get("email"),
        access_token=access_token,
        refresh_token=refresh_token,
        expires_at=expires_at,
        updated_at=now,
    )


def _auth_failed(exc: SupabaseError) -> Exception:
    if exc.kind == "transient":
        return exc
    return SyncAuthFailed(
        f"Supabase refused the session: {exc.message}", detail={"remote_code": exc.remote_code, "kind": exc.kind}
    )

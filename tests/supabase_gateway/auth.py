"""GoTrue (``/auth/v1``) emulation: password and refresh-token grants, user, logout.

Refresh tokens rotate and are single-use: using one revokes it and issues its child. Reusing a
revoked token within ``reuse_interval_s`` (Supabase default 10 s) returns the session's active
token again (the "lost response" case); outside the window it is ``refresh_token_already_used``
and the whole session is revoked. Users, sessions and tokens live in the ``auth`` schema.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from .db import ConnectionPool
from .errors import AUTH_API_VERSION, ApiError, auth_error
from .http import Request, Response
from .tokens import Clock, TokenError, Tokens

_PBKDF2_ROUNDS = 20_000


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, _PBKDF2_ROUNDS)
    return f"pbkdf2${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str | None) -> bool:
    if not stored or stored.count("$") != 2:
        return False
    _, salt_hex, digest_hex = stored.split("$")
    expected = hash_password(password, bytes.fromhex(salt_hex)).split("$")[2]
    return hmac.compare_digest(expected, digest_hex)


def _iso(ts: datetime | None) -> str | None:
    return None if ts is None else ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _user_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "aud": row["aud"],
        "role": row["role"],
        "email": row["email"],
        "phone": "",
        "email_confirmed_at": _iso(row["email_confirmed_at"]),
        "confirmed_at": _iso(row["email_confirmed_at"]),
        "last_sign_in_at": _iso(row["last_sign_in_at"]),
        "app_metadata": row["raw_app_meta_data"],
        "user_metadata": row["raw_user_meta_data"],
        "identities": [],
        "created_at": _iso(row["created_at"]),
        "updated_at": _iso(row["updated_at"]),
        "is_anonymous": row["is_anonymous"],
    }


@dataclass
class AuthService:
    admin_pool: ConnectionPool
    tokens: Tokens
    clock: Clock
    issuer: str
    access_ttl_s: int = 3600
    reuse_interval_s: float = 10.0

    # -- admin helpers (Python API for tests) -------------------------------------------------
    def create_user(self, email: str, password: str) -> str:
        user_id = str(uuid.uuid4())
        with self.admin_pool.connection() as conn:
            conn.execute(
                "insert into auth.users (id, email, encrypted_password, email_confirmed_at) values (%s, %s, %s, now())",
                (user_id, email.lower(), hash_password(password)),
            )
        return user_id

    def issue_session(self, user_id: str) -> dict[str, Any]:
        """Sign a user in without a password (what an admin magic link would do)."""
        with self.admin_pool.connection() as conn, conn.transaction():
            return self._new_session(conn, self._user(conn, user_id))

    # -- HTTP ---------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        sub = request.path.removeprefix("/auth/v1")
        if sub == "/token" and request.method == "POST":
            grant = request.query_value("grant_type")
            if grant == "password":
                return self._password_grant(request)
            if grant == "refresh_token":
                return self._refresh_grant(request)
            raise auth_error(400, "validation_failed", "unsupported_grant_type")
        if sub == "/user" and request.method == "GET":
            claims = self._bearer(request)
            with self.admin_pool.connection() as conn:
                return self._json(200, _user_json(self._user(conn, claims["sub"])))
        if sub == "/logout" and request.method == "POST":
            return self._logout(request)
        raise auth_error(404, "not_found", "Unsupported endpoint")

    def _json(self, status: int, body: Any) -> Response:
        return Response(status, json.dumps(body).encode(), [("X-Supabase-Api-Version", AUTH_API_VERSION)])

    def _body(self, request: Request) -> dict[str, Any]:
        try:
            body = json.loads(request.body or b"{}")
        except ValueError as exc:
            raise auth_error(400, "bad_json", f"Could not parse request body as JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise auth_error(400, "bad_json", "Could not parse request body as JSON")
        return body

    def _user(self, conn: psycopg.Connection, user_id: str) -> dict[str, Any]:
        with conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute("select * from auth.users where id = %s", (user_id,)).fetchone()
        if row is None:
            raise auth_error(403, "user_not_found", "User from sub claim in JWT does not exist")
        return row

    def _new_session(self, conn: psycopg.Connection, user: dict[str, Any]) -> dict[str, Any]:
        session_id = str(uuid.uuid4())
        now = datetime.fromtimestamp(self.clock.now(), UTC)
        conn.execute(
            "insert into auth.sessions (id, user_id, created_at, updated_at) values (%s,%s,%s,%s)",
            (session_id, user["id"], now, now),
        )
        conn.execute("update auth.users set last_sign_in_at = %s where id = %s", (now, user["id"]))
        token = self._insert_refresh_token(conn, user["id"], session_id, None)
        return self._session_json(user, session_id, token)

    def _insert_refresh_token(self, conn: psycopg.Connection, user_id: Any, session_id: Any, parent: str | None) -> str:
        token = secrets.token_urlsafe(9)
        now = datetime.fromtimestamp(self.clock.now(), UTC)
        conn.execute(
            "insert into auth.refresh_tokens (token, user_id, session_id, parent, created_at,"
            " updated_at) values (%s, %s, %s, %s, %s, %s)",
            (token, user_id, session_id, parent, now, now),
        )
        return token

    def _session_json(self, user: dict[str, Any], session_id: Any, refresh: str) -> dict[str, Any]:
        iat = int(self.clock.now())
        exp = iat + self.access_ttl_s
        claims = {
            "iss": self.issuer,
            "sub": str(user["id"]),
            "aud": "authenticated",
            "exp": exp,
            "iat": iat,
            "email": user["email"],
            "phone": "",
            "app_metadata": user["raw_app_meta_data"],
            "user_metadata": user["raw_user_meta_data"],
            "role": "authenticated",
            "aal": "aal1",
            "amr": [{"method": "password", "timestamp": iat}],
            "session_id": str(session_id),
            "is_anonymous": False,
        }
        return {
            "access_token": self.tokens.encode(claims),
            "token_type": "bearer",
            "expires_in": self.access_ttl_s,
            "expires_at": exp,
            "refresh_token": refresh,
            "user": _user_json(user),
        }

    def _password_grant(self, request: Request) -> Response:
        body = self._body(request)
        email, password = body.get("email"), body.get("password")
        if not isinstance(email, str) or not isinstance(password, str) or not password:
            raise auth_error(400, "validation_failed", "missing email or phone")
        with self.admin_pool.connection() as conn, conn.transaction():
            with conn.cursor(row_factory=dict_row) as cur:
                user = cur.execute("select * from auth.users where email = %s", (email.lower(),)).fetchone()
            if user is None or not check_password(password, user["encrypted_password"]):
                raise auth_error(400, "invalid_credentials", "Invalid login credentials")
            return self._json(200, self._new_session(conn, user))

    def _refresh_grant(self, request: Request) -> Response:
        token = self._body(request).get("refresh_token")
        if not isinstance(token, str) or not token:
            raise auth_error(400, "validation_failed", "Refresh Token is required")
        with (
            self.admin_pool.connection() as conn,
            conn.transaction(),
            conn.cursor(row_factory=dict_row) as cur,
        ):
            row = cur.execute("select * from auth.refresh_tokens where token = %s for update", (token,)).fetchone()
            if row is None:
                raise auth_error(
                    400,
                    "refresh_token_not_found",
                    "Invalid Refresh Token: Refresh Token Not Found",
                )
            user = self._user(conn, row["user_id"])
            if not row["revoked"]:
                now = datetime.fromtimestamp(self.clock.now(), UTC)
                cur.execute(
                    "update auth.refresh_tokens set revoked = true, updated_at = %s where id = %s",
                    (now, row["id"]),
                )
                child = self._insert_refresh_token(conn, row["user_id"], row["session_id"], token)
                return self._json(200, self._session_json(user, row["session_id"], child))
            age = self.clock.now() - row["updated_at"].timestamp()
            active = cur.execute(
                "select token from auth.refresh_tokens where session_id = %s and not revoked order by id desc limit 1",
                (row["session_id"],),
            ).fetchone()
            if age <= self.reuse_interval_s and active is not None:
                return self._json(200, self._session_json(user, row["session_id"], active["token"]))
            cur.execute("delete from auth.sessions where id = %s", (row["session_id"],))
        # Raised after the transaction committed, so the revocation sticks.
        raise auth_error(400, "refresh_token_already_used", "Invalid Refresh Token: Already Used")

    def _bearer(self, request: Request) -> dict[str, Any]:
        header = request.header("Authorization") or ""
        if not header.lower().startswith("bearer "):
            raise auth_error(401, "no_authorization", "This endpoint requires a valid Bearer token")
        try:
            claims = self.tokens.decode(header[7:].strip())
        except TokenError as exc:
            detail = "token is expired" if exc.expired else exc.message
            raise auth_error(403, "bad_jwt", f"invalid JWT: unable to parse or verify signature, {detail}") from exc
        if claims.get("role") != "authenticated" or "sub" not in claims:
            raise auth_error(403, "bad_jwt", "invalid claim: missing sub claim")
        with self.admin_pool.connection() as conn:
            found = conn.execute("select 1 from auth.sessions where id = %s", (claims.get("session_id"),)).fetchone()
        if found is None:
            raise auth_error(403, "session_not_found", "Session from session_id claim in JWT does not exist")
        return claims

    def _logout(self, request: Request) -> Response:
        claims = self._bearer(request)
        scope = request.query_value("scope") or "global"
        with self.admin_pool.connection() as conn:
            if scope == "local":
                conn.execute("delete from auth.sessions where id = %s", (claims["session_id"],))
            elif scope == "others":
                conn.execute(
                    "delete from auth.sessions where user_id = %s and id <> %s",
                    (claims["sub"], claims["session_id"]),
                )
            elif scope == "global":
                conn.execute("delete from auth.sessions where user_id = %s", (claims["sub"],))
            else:
                raise auth_error(400, "validation_failed", "unsupported logout scope")
        return Response(204, b"", [("X-Supabase-Api-Version", AUTH_API_VERSION)], None)


__all__ = ["ApiError", "AuthService", "check_password", "hash_password"]

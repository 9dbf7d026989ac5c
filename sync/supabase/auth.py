"""GoTrue (``/auth/v1``): password grant, refresh grant, current user, logout."""

from __future__ import annotations

from typing import Any

from sync.errors import SupabaseError, SyncAuthFailed
from sync.supabase.http import API_VERSION_HEADER, SupabaseHttp, decode_body

_HEADERS = dict([API_VERSION_HEADER])


class AuthClient:
    def __init__(self, http: SupabaseHttp) -> None:
        self.http = http

    def _grant(self, grant_type: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.http.send(
            "auth", "POST", "/auth/v1/token", auth=False, params={"grant_type": grant_type},
            json_body=body, headers=_HEADERS,
        )  # fmt: skip
        data = decode_body(response)
        if not isinstance(data, dict):
            raise SupabaseError("permanent", "Supabase Auth answered without a session", service="auth")
        return data

    def password(self, email: str, password: str) -> dict[str, Any]:
        try:
            return self._grant(
                "password", {"email": email, "password": password, "gotrue_meta_security": {"captcha_token": None}}
            )
        except SupabaseError as exc:
            if exc.kind == "permanent":
                raise SyncAuthFailed(
                    f"Supabase refused the sign-in: {exc.message}", detail={"remote_code": exc.remote_code}
                ) from exc
            raise

    def refresh(self, refresh_token: str) -> dict[str, Any]:
        return self._grant("refresh_token", {"refresh_token": refresh_token})

    def user(self, access_token: str) -> dict[str, Any]:
        response = self.http.send(
            "auth", "GET", "/auth/v1/user", auth=False,
            headers={**_HEADERS, "Authorization": f"Bearer {access_token}"},
        )  # fmt: skip
        data = decode_body(response)
        if not isinstance(data, dict) or "id" not in data:
            raise SupabaseError("permanent", "Supabase Auth returned no user", service="auth")
        return data

    def logout(self, access_token: str, scope: str = "local") -> None:
        self.http.send(
            "auth", "POST", "/auth/v1/logout", auth=False, params={"scope": scope},
            headers={**_HEADERS, "Authorization": f"Bearer {access_token}"},
        )  # fmt: skip

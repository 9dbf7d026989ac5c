"""Supabase's error bodies and status codes, per service (pure functions, no I/O).

* PostgREST: ``{"code", "details", "hint", "message"}``; HTTP status from the SQLSTATE by the
  table in PostgREST's docs (docs/references/errors.rst), 401 vs 403 for 42501 by role.
* Storage: ``{"statusCode": "<code as string>", "code", "error", "message"}``; the HTTP status is
  400 for every error except 500 (supabase/storage src/internal/errors/storage-error.ts).
* Auth (GoTrue, API version 2024-01-01): ``{"code", "message"}`` plus ``x-sb-error-code``.
"""

from __future__ import annotations

import json
from typing import Any

JSON_UTF8 = "application/json; charset=utf-8"
AUTH_API_VERSION = "2024-01-01"


class ApiError(Exception):
    """An error response ready to be written: status, JSON body and extra headers."""

    def __init__(self, status: int, body: dict[str, Any], headers: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body
        self.headers = headers

    def encoded(self) -> bytes:
        return json.dumps(self.body).encode("utf-8")


# SQLSTATE -> HTTP, PostgREST's table. Exact codes first, then two-character classes.
_PG_EXACT: dict[str, int] = {
    "23503": 409,
    "23505": 409,
    "25006": 405,
    "42883": 404,
    "42P01": 404,
    "42P17": 500,
    "P0001": 400,
    "53400": 500,
}
_PG_CLASS: dict[str, int] = {
    "08": 503,
    "09": 500,
    "0L": 403,
    "0P": 403,
    "25": 500,
    "28": 403,
    "2D": 500,
    "38": 500,
    "39": 500,
    "3B": 500,
    "40": 500,
    "53": 503,
    "54": 500,
    "55": 500,
    "57": 500,
    "58": 500,
    "F0": 500,
    "HV": 500,
    "P0": 500,
    "XX": 500,
}


def pg_error_status(sqlstate: str, authenticated: bool) -> int:
    """HTTP status PostgREST answers for a PostgreSQL error ``sqlstate``."""
    if sqlstate == "42501":
        return 403 if authenticated else 401
    if sqlstate.startswith("PT") and len(sqlstate) == 5 and sqlstate[2:].isdigit():
        return int(sqlstate[2:])  # RAISE ... USING ERRCODE = 'PT402' sets the status directly
    if sqlstate in _PG_EXACT:
        return _PG_EXACT[sqlstate]
    return _PG_CLASS.get(sqlstate[:2], 400)


def postgrest_error(
    status: int,
    code: str,
    message: str,
    details: str | None = None,
    hint: str | None = None,
    headers: tuple[tuple[str, str], ...] = (),
) -> ApiError:
    body = {"code": code, "details": details, "hint": hint, "message": message}
    return ApiError(status, body, headers)


def postgrest_from_pg(
    sqlstate: str, message: str, details: str | None, hint: str | None, authenticated: bool
) -> ApiError:
    return postgrest_error(pg_error_status(sqlstate, authenticated), sqlstate, message, details, hint)


def jwt_expired() -> ApiError:
    return postgrest_error(
        401,
        "PGRST303",
        "JWT expired",
        headers=(("WWW-Authenticate", 'Bearer error="invalid_token", error_description="JWT expired"'),),
    )


def jwt_invalid(message: str) -> ApiError:
    return postgrest_error(
        401,
        "PGRST301",
        message,
        headers=(("WWW-Authenticate", f'Bearer error="invalid_token", error_description="{message}"'),),
    )


def storage_error(status_code: int, code: str, message: str, http_status: int | None = None) -> ApiError:
    """A Storage error; ``http_status`` overrides the 400/500 rule (429, 423 from a proxy...)."""
    if http_status is None:
        http_status = 500 if status_code == 500 else 400
    body = {"statusCode": str(status_code), "code": code, "error": code, "message": message}
    return ApiError(http_status, body)


def storage_from_pg(sqlstate: str, message: str) -> ApiError:
    """How Storage renders a database error (src/storage/database/errors.ts)."""
    if sqlstate == "42501":
        text = "new row violates row-level security policy" if "row-level security" in message else message
        return storage_error(403, "AccessDenied", text)
    if sqlstate == "23505":
        return storage_error(409, "ResourceAlreadyExists", "The resource already exists")
    if sqlstate == "22P02":
        return storage_error(400, "InvalidParameter", message)
    if sqlstate in ("55P03",):
        return storage_error(423, "ResourceLocked", "The resource is locked")
    return storage_error(500, "DatabaseError", f"database error, code: {sqlstate}")


def auth_error(status: int, code: str, message: str) -> ApiError:
    return ApiError(
        status,
        {"code": code, "message": message},
        (("x-sb-error-code", code), ("X-Supabase-Api-Version", AUTH_API_VERSION)),
    )


def gateway_error(status: int, message: str) -> ApiError:
    """An error from the API gateway in front of the services (Kong on Supabase)."""
    return ApiError(status, {"message": message})

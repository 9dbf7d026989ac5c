"""Errors of the sync subsystem, as :class:`backend.errors.SidecarError` values the API maps.

Two families:

* :class:`SupabaseError` — one failed call to Supabase, classified once by
  :mod:`sync.supabase.retry` (``kind``: transient, auth_expired, signed_out, permanent, exists,
  not_found). The HTTP layer raises it; the engine and the service decide what it means.
* Errors a caller of the sync API sees (not configured, signed out, not synced yet, ...).
"""

from __future__ import annotations

from typing import Any, Literal

from backend.errors import BadRequest, Conflict, SidecarError, Unavailable

ErrorKind = Literal["transient", "auth_expired", "signed_out", "permanent", "exists", "not_found"]


class SupabaseError(SidecarError):
    """A call to Supabase failed; ``kind`` says what to do about it."""

    status = 502
    code = "sync_remote_error"

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        service: str,
        http_status: int | None = None,
        remote_code: str | None = None,
        retry_after: float | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(
            message,
            detail={"kind": kind, "service": service, "http_status": http_status, "remote_code": remote_code},
        )
        self.kind: ErrorKind = kind
        self.service = service
        self.http_status = http_status
        self.remote_code = remote_code
        self.retry_after = retry_after
        self.body = body

    @property
    def transient(self) -> bool:
        return self.kind == "transient"

    def summary(self) -> dict[str, Any]:
        return {"kind": self.kind, "service": self.service, "http_status": self.http_status,
                "code": self.remote_code, "message": self.message}  # fmt: skip


class SyncNotConfigured(Conflict):
    """No Supabase session is configured: sync is disabled."""

    code = "sync_not_configured"


class SyncSignedOut(Conflict):
    """The Supabase session ended (refresh token reused or revoked): sign in again."""

    code = "sync_signed_out"


class SyncAuthFailed(BadRequest):
    """Supabase refused the credentials or tokens given to ``POST /v1/sync/session``."""

    code = "sync_auth_failed"


class RemoteUnavailable(Unavailable):
    """Supabase could not be reached (network, 5xx, rate limit) or the circuit is open."""

    code = "sync_remote_unavailable"


class SyncSchemaMissing(SidecarError):
    """The Supabase project has no sync tables/functions: ``sync/migrations`` are not applied."""

    status = 502
    code = "sync_schema_missing"


class NotSynced(Conflict):
    """The document has no cloud copy yet (not pushed, or pushed without a file)."""

    code = "not_synced"

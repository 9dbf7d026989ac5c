"""The Supabase session: persisted 0600 in the data dir, refreshed single-flight.

``<data_dir>/sync/session.json`` holds the project URL, the anon (publishable) key and the
user's access + refresh tokens. Refresh tokens rotate and are single-use, so:

* only one refresh runs at a time (a lock); a caller whose token another thread already
  replaced gets the new token without a second refresh (two refreshes of one token outside
  Supabase's 10 s reuse window revoke the whole session);
* the rotated refresh token is written to disk (atomically, fsynced) **before** the new access
  token is handed to anyone, so a crash right after a refresh never leaves only a revoked token;
* ``refresh_token_already_used`` / ``session_not_found`` (and friends) put the session in the
  signed-out state: tokens are dropped, the reason is kept for the UI, local data stays.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from backend.osdeps.paths import ensure_private_dir, write_private_file
from sync.errors import SupabaseError, SyncAuthFailed, SyncNotConfigured, SyncSignedOut

SESSION_FILE = "session.json"
REFRESH_MARGIN_S = 60.0
"""Refresh proactively when the access token has less than this left."""


@dataclass(frozen=True, slots=True)
class Session:
    supabase_url: str
    anon_key: str
    user_id: str
    email: str | None
    access_token: str | None
    refresh_token: str | None
    expires_at: float
    """Local wall-clock time the access token expires (from ``expires_in`` at receipt)."""
    signed_out_reason: str | None = None
    updated_at: float = 0.0

    @property
    def active(self) -> bool:
        return self.signed_out_reason is None and bool(self.access_token) and bool(self.refresh_token)

    def needs_refresh(self, now: float, margin: float = REFRESH_MARGIN_S) -> bool:
        return self.expires_at - now <= margin

    def public(self) -> dict[str, Any]:
        """What the status API may show (never a token)."""
        return {
            "supabase_url": self.supabase_url,
            "user_id": self.user_id,
            "email": self.email,
            "signed_in": self.active,
            "signed_out_reason": self.signed_out_reason,
            "expires_at": self.expires_at if self.active else None,
        }


def session_from_grant(supabase_url: str, anon_key: str, grant: dict[str, Any], now: float) -> Session:
    """A session from a GoTrue token response (password or refresh grant)."""
    try:
        user = grant.get("user") or {}
        expires_in = float(grant.get("expires_in") or 3600)
        return Session(
            supabase_url=supabase_url,
            anon_key=anon_key,
            user_id=str(user["id"]),
            email=user.get("email"),
            access_token=str(grant["access_token"]),
            refresh_token=str(grant["refresh_token"]),
            expires_at=now + expires_in,
            updated_at=now,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise SyncAuthFailed("Supabase Auth answered without a usable session", detail={"missing": str(exc)}) from exc


class SessionStore:
    """The session file (0600, atomic replace) under ``<data_dir>/sync``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / SESSION_FILE

    def load(self) -> Session | None:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return None  # unreadable: behave as not configured (the UI offers to sign in again)
        try:
            return Session(**raw)
        except TypeError:
            return None

    def save(self, session: Session) -> None:
        ensure_private_dir(self.directory)
        write_private_file(self.path, json.dumps(asdict(session), indent=1).encode("utf-8"))

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


class Refresher(Protocol):
    def refresh(self, refresh_token: str) -> dict[str, Any]: ...


class SessionManager:
    """The current session, its refresh, its persistence. Thread-safe."""

    def __init__(
        self,
        store: SessionStore,
        session: Session,
        refresher: Refresher,
        *,
        clock: Callable[[], float] = time.time,
        on_change: Callable[[Session], None] | None = None,
        margin_s: float = REFRESH_MARGIN_S,
    ) -> None:
        self.store = store
        self._session = session
        self._refresher = refresher
        self._clock = clock
        self._on_change = on_change
        self._margin = margin_s
        self._lock = threading.Lock()  # guards _session
        self._refresh_lock = threading.Lock()  # single flight
        self.refreshes = 0

    @property
    def session(self) -> Session:
        with self._lock:
            return self._session

    @property
    def user_id(self) -> str:
        return self.session.user_id

    def access_token(self) -> str:
        """A token with at least the margin left (refreshing first if needed)."""
        s = self.session
        if not s.active:
            raise SyncSignedOut("signed out of Supabase; sign in again", detail={"reason": s.signed_out_reason})
        if s.needs_refresh(self._clock(), self._margin):
            return self.refresh(None)
        assert s.access_token is not None
        return s.access_token

    def refresh(self, failed_token: str | None) -> str:
        """Refresh once for everyone. ``failed_token``: the token a request was refused with;
        if another thread already replaced it, return the replacement without refreshing."""
        with self._refresh_lock:
            s = self.session
            if not s.active:
                raise SyncSignedOut("signed out of Supabase; sign in again", detail={"reason": s.signed_out_reason})
            assert s.access_token is not None and s.refresh_token is not None
            if failed_token is not None and failed_token != s.access_token:
                return s.access_token
            if failed_token is None and not s.needs_refresh(self._clock(), self._margin):
                return s.access_token
            try:
                grant = self._refresher.refresh(s.refresh_token)
            except SupabaseError as exc:
                if exc.kind == "signed_out":
                    self.sign_out(exc.remote_code or "session_revoked")
                    raise SyncSignedOut(
                        "the Supabase session was revoked; sign in again", detail={"reason": exc.remote_code}
                    ) from exc
                raise
            new = session_from_grant(s.supabase_url, s.anon_key, grant, self._clock())
            if new.user_id != s.user_id:
                raise SyncAuthFailed("the refreshed session belongs to another user")
            self.store.save(new)  # durable before the new tokens are used anywhere
            with self._lock:
                self._session = new
            self.refreshes += 1
        self._changed(new)
        assert new.access_token is not None
        return new.access_token

    def sign_out(self, reason: str) -> Session:
        with self._lock:
            self._session = replace(
                self._session, access_token=None, refresh_token=None, signed_out_reason=reason, updated_at=self._clock()
            )
            s = self._session
        self.store.save(s)
        self._changed(s)
        return s

    def _changed(self, s: Session) -> None:
        if self._on_change is not None:
            self._on_change(s)


def require_active(session: Session | None) -> Session:
    if session is None:
        raise SyncNotConfigured("sync is not configured: POST /v1/sync/session first")
    if not session.active:
        raise SyncSignedOut("signed out of Supabase; sign in again", detail={"reason": session.signed_out_reason})
    return session

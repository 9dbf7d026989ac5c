"""SyncService: the sync component the composition root starts and stops.

Disabled — and never opening a network connection — until a session is configured
(``POST /v1/sync/session`` or a session file from an earlier run). Then one thread,
``sync-worker``, runs the engine: when asked (API, new session), when local changes are
pending, when the network interfaces change, and every ``interval_s`` to pull. Failures back
off through a circuit breaker; work stays queued; nothing is dropped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from backend.components import ComponentState, StatusCell
from backend.embed.circuit import BreakerPolicy, CircuitBreaker
from backend.errors import Unavailable, ValidationFailed
from backend.events import EventBus
from backend.ingest.blobs import BlobStore
from backend.store import Store
from backend.store.documents import Document
from sync import sharing
from sync.connectivity import ConnectivityWatch, Fingerprint, fingerprint, network_up
from sync.engine import EngineConfig, RunCancelled, RunReport, SyncEngine
from sync.errors import RemoteUnavailable, SupabaseError, SyncNotConfigured, SyncSchemaMissing, SyncSignedOut
from sync.local import SqliteSync
from sync.observe import RunObserver, error_class
from sync.session import Session, SessionStore
from sync.share import ShareCache
from sync.signin import adopt_tokens, check_token, check_url, sign_in_password
from sync.supabase.remote import SupabaseRemote, open_remote
from sync.supabase.retry import RetryPolicy
from sync.supabase.storage import TUS_CHUNK

log = logging.getLogger("docsidecar.sync")

PENDING_CHECK_S = 2.0


@dataclass(frozen=True, slots=True)
class SyncConfig:
    auto: bool = True
    """Background runs; False: only explicit run_once() (POST /v1/sync/run)."""
    interval_s: float = 60.0
    download: str = "eager"
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    connectivity_poll_s: float = 5.0
    share_cache_s: float = 300.0
    breaker: BreakerPolicy = field(default_factory=lambda: BreakerPolicy(failure_threshold=3, cooldown_s=30.0))
    engine: EngineConfig = field(default_factory=EngineConfig)
    tus_chunk: int = TUS_CHUNK


class SyncService:
    name = "sync"

    def __init__(
        self,
        store: Store,
        events: EventBus,
        blobs: BlobStore,
        config: SyncConfig,
        *,
        data_dir: Path,
        model_id: str,
        count_tokens: Callable[[Sequence[str]], list[int]] | None = None,
        on_ingest_queued: Callable[[], None] | None = None,
        transport: httpx.BaseTransport | None = None,
        probe: Callable[[], Fingerprint] = fingerprint,
        max_file_bytes: int = 512 * 1024 * 1024,
        on_run: RunObserver | None = None,
    ) -> None:
        self.store = store
        self.events = events
        self.config = config
        self._on_run = on_run
        """Told how every run asked for ended (:mod:`sync.observe`; the composition root passes metrics)."""
        self.local = SqliteSync(
            store, blobs, model_id=model_id, staging_dir=data_dir / "sync" / "staging", count_tokens=count_tokens,
            on_ingest_queued=on_ingest_queued, max_file_bytes=max_file_bytes,
        )  # fmt: skip
        self.sessions = SessionStore(data_dir / "sync")
        self.status = StatusCell(ComponentState.STARTING)
        self.share_cache = ShareCache(config.share_cache_s)
        self._transport = transport
        self.watch = ConnectivityWatch(config.connectivity_poll_s, probe)
        """Network-change detection the worker polls (replaceable, e.g. by tests)."""
        self._breaker = CircuitBreaker(config.breaker)
        self._lock = threading.Lock()  # remote, flags
        self._run_lock = threading.Lock()  # one run at a time
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._requested = False
        self._remote: SupabaseRemote | None = None
        self._online: bool | None = None
        self._running = False
        self._next_run = 0.0
        self._last_report: RunReport | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        session = self.sessions.load()
        if session is not None:
            self._activate(session)
        else:
            self.status.set(ComponentState.DISABLED, {"reason": "no Supabase session configured"})
        self._thread = threading.Thread(target=self._main, name="sync-worker")
        self._thread.start()

    def stop(self) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._run_lock, self._lock:  # a run from the API ends at its next request too
            remote, self._remote = self._remote, None
        if remote is not None:
            remote.close()
        self.status.set(ComponentState.STOPPED)

    @property
    def remote(self) -> SupabaseRemote | None:
        """The Supabase clients of the current session (None while disabled)."""
        with self._lock:
            return self._remote

    @property
    def enabled(self) -> bool:
        with self._lock:
            return self._remote is not None

    def _activate(self, session: Session) -> None:
        remote = open_remote(
            session, self.sessions, self.config.retry, self.local.blob_writer, transport=self._transport,
            on_change=self._session_changed, tus_chunk=self.config.tus_chunk,
        )  # fmt: skip
        with self._run_lock, self._lock:  # never swap the clients under a running engine
            old, self._remote = self._remote, remote
            self._breaker = CircuitBreaker(self.config.breaker)
            self._online = None
        if old is not None:
            old.close()
        self.share_cache.clear()
        self._session_changed(session)

    def _session_changed(self, session: Session) -> None:
        if session.active:
            self.status.set(ComponentState.READY, {"user_id": session.user_id})
        else:
            self.status.set(
                ComponentState.DEGRADED, {"user_id": session.user_id, "signed_out": session.signed_out_reason}
            )
            self.events.publish("sync.signed_out", {"user_id": session.user_id, "reason": session.signed_out_reason})

    # -- session API --------------------------------------------------------------------------
    def configure(
        self,
        supabase_url: str,
        anon_key: str,
        *,
        access_token: str | None = None,
        refresh_token: str | None = None,
        email: str | None = None,
        password: str | None = None,
    ) -> dict[str, Any]:
        url = check_url(supabase_url)
        key = check_token(anon_key, "anon_key")
        if access_token is not None or refresh_token is not None:
            if email is not None or password is not None:
                raise ValidationFailed("give either tokens or email/password, not both")
            session = adopt_tokens(
                url, key, check_token(access_token or "", "access_token"),
                check_token(refresh_token or "", "refresh_token"), self.config.retry, self._transport,
            )  # fmt: skip
        elif email and password:
            session = sign_in_password(url, key, email, password, self.config.retry, self._transport)
        else:
            raise ValidationFailed("give access_token and refresh_token, or email and password")
        self.sessions.save(session)  # 0600, before anything uses the tokens
        self._activate(session)
        self.events.publish("sync.session", {"user_id": session.user_id, "email": session.email})
        self.request_run()
        return self.sync_status()

    def sign_out(self) -> dict[str, Any]:
        with self._run_lock, self._lock:
            remote, self._remote = self._remote, None
        if remote is not None:
            session = remote.manager.session
            if session.active and session.access_token:
                try:  # best effort: end the session on the server too
                    remote.auth.logout(session.access_token)
                except (SupabaseError, SyncSignedOut) as exc:
                    log.info("logout at Supabase failed (%s); signing out locally", exc)
            remote.close()
        self.sessions.clear()
        self.share_cache.clear()
        self.status.set(ComponentState.DISABLED, {"reason": "signed out"})
        self.events.publish("sync.signed_out", {"reason": "signed out"})
        return self.sync_status()

    # -- running ------------------------------------------------------------------------------
    def request_run(self) -> None:
        with self._wake:
            self._requested = True
            self._wake.notify_all()

    def run_once(self) -> dict[str, Any]:
        """One full run now (waits for a run in progress first). Raises on failure."""
        with self._run_lock:
            with self._lock:
                remote = self._remote
            if remote is None:
                self._observe("not_configured", None, None)
                raise SyncNotConfigured("sync is not configured: POST /v1/sync/session first")
            if not remote.manager.session.active:
                self._observe("signed_out", None, None)
                raise SyncSignedOut(
                    "signed out of Supabase; sign in again", detail={"reason": remote.manager.session.signed_out_reason}
                )
            return self._run(remote).to_dict()

    def _run(self, remote: SupabaseRemote) -> RunReport:
        engine = SyncEngine(self.local, remote, self.config.engine, self.events.publish, self._is_stopping)
        with self._lock:
            self._running = True
        self.events.publish("sync.started", {})
        t0 = time.monotonic()
        try:
            report = engine.run()
        except RunCancelled as exc:
            self._observe("cancelled", None, time.monotonic() - t0)
            raise Unavailable("sync is stopping; the run continues after the next start") from exc
        except SyncSignedOut as exc:
            self._observe("failed", error_class(exc), time.monotonic() - t0)
            self._failed(exc, transient=False)
            raise
        except SupabaseError as exc:
            self._observe("failed", error_class(exc), time.monotonic() - t0)
            self._failed(exc, transient=exc.kind in ("transient", "auth_expired"))
            if exc.kind in ("transient", "auth_expired"):
                raise RemoteUnavailable(f"Supabase is unreachable: {exc.message}", detail=exc.summary()) from exc
            if exc.remote_code in sharing.SCHEMA_MISSING:
                raise SyncSchemaMissing(
                    "the Supabase project lacks the sync tables or functions: apply sync/migrations "
                    f"(Supabase said: {exc.message})",
                    detail=exc.summary(),
                ) from exc
            raise
        except Exception as exc:
            self._observe("failed", error_class(exc), time.monotonic() - t0)
            raise
        finally:
            with self._lock:
                self._running = False
        self._observe("ok", None, time.monotonic() - t0)
        self._breaker.record_success()
        with self._lock:
            self._online = True
            self._last_report = report
            self._next_run = time.monotonic() + self.config.interval_s
        summary = report.to_dict()
        summary["duration_s"] = round(time.monotonic() - t0, 3)
        self.local.record_outcome(True, {"report": summary})
        self.events.publish("sync.completed", summary)
        return report

    def _observe(self, outcome: str, error: str | None, seconds: float | None) -> None:
        if self._on_run is not None:
            try:
                self._on_run(outcome, error, seconds)
            except Exception:  # metrics must never break a run
                log.exception("sync run hook failed")

    def _is_stopping(self) -> bool:
        with self._wake:
            return self._stopping

    def _failed(self, exc: Exception, *, transient: bool) -> None:
        body = exc.summary() if isinstance(exc, SupabaseError) else {"message": str(exc)}
        if transient:
            self._breaker.record_failure()
        with self._lock:
            if isinstance(exc, SupabaseError) and exc.http_status is None:
                self._online = False
            self._next_run = time.monotonic() + max(self._breaker.retry_after(), self.config.retry.backoff_max_s)
        self.local.record_outcome(False, {"error": body})
        self.events.publish("sync.failed", {"error": body})

    def _main(self) -> None:
        last_pending_check = 0.0
        while True:
            with self._wake:
                if self._stopping:
                    return
                self._wake.wait(min(1.0, self.config.connectivity_poll_s))
                if self._stopping:
                    return
                requested, self._requested = self._requested, False
            if not self.enabled or not self.config.auto:
                continue
            if self.watch.poll():
                log.info("network interfaces changed: syncing now")
                self._breaker = CircuitBreaker(self.config.breaker)
                requested = True
            now = time.monotonic()
            due = requested or now >= self._next_run
            if not due and now - last_pending_check >= PENDING_CHECK_S:
                last_pending_check = now
                due = self.local.summary()["pending"] > 0 and self._online is not False
            if due and self._breaker.allow():
                self._background_run()

    def _background_run(self) -> None:
        try:
            self.run_once()
        except RemoteUnavailable as exc:
            log.warning("sync run failed: %s", exc.message)
        except (SyncNotConfigured, SyncSignedOut, Unavailable):
            pass  # signed out (the status shows it) or stopping
        except SupabaseError as exc:
            log.warning("sync run failed: %s", exc.message)
        except Exception:
            log.exception("sync run crashed")
            with self._lock:
                self._next_run = time.monotonic() + self.config.interval_s

    # -- status and lists ---------------------------------------------------------------------
    def sync_status(self) -> dict[str, Any]:
        with self._lock:
            remote, online, running = self._remote, self._online, self._running
            report = self._last_report
        summary = self.local.summary()
        session = remote.manager.session.public() if remote is not None else None
        breaker = self._breaker.state
        fp = self.watch.last
        return {
            "enabled": remote is not None,
            "state": self.status.get().state.value,
            "session": session,
            "signed_in": bool(session and session["signed_in"]),
            "online": online,
            "network_up": network_up(fp) if fp is not None else None,
            "running": running,
            "circuit": {"state": breaker.name, "retry_after_s": round(self._breaker.retry_after(), 1)},
            "pending": summary["pending"],
            "dead_letters": summary["dead_letters"],
            "conflicts": summary["conflicts"],
            "device_id": summary["device_id"],
            "last_success": summary["last_success"],
            "last_error": summary["last_error"],
            "last_run": report.to_dict() if report else None,
        }

    def dead_letters(self, limit: int, before: int | None) -> list[dict[str, Any]]:
        return self.local.dead_letters(limit, before)

    def conflicts(self, limit: int, before: int | None) -> list[dict[str, Any]]:
        return self.local.conflicts(limit, before)

    def retry_dead_letter(self, letter_id: int) -> dict[str, Any]:
        result = self.local.retry_dead_letter(letter_id)
        self.request_run()
        return result

    # -- files in the cloud --------------------------------------------------------------------
    def fetch_original(self, doc_id: str) -> Document | None:
        """Download the original file of a document synced without it (``on_demand``)."""
        return sharing.fetch_original(self.local, self.remote, doc_id)

    def share_url(self, doc_id: str, expires_in: int) -> dict[str, Any]:
        """An expiring signed URL of the document's cloud copy (cached, see ``sync.share``)."""
        return sharing.share_url(self.local, self.remote, self.share_cache, doc_id, expires_in)

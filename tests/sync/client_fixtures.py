"""Building the sync HTTP clients against the gateway, outside of a sidecar."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from backend.ingest.blobs import BlobStore
from sync.session import SessionStore
from sync.signin import sign_in_password
from sync.supabase.remote import SupabaseRemote, open_remote
from sync.supabase.retry import RetryPolicy
from tests.supabase_gateway import Gateway

QUICK = RetryPolicy(max_attempts=5, backoff_initial_s=0.001, backoff_max_s=0.01, retry_after_max_s=5.0)


@dataclass
class Sleeps:
    """An injected ``sleep``: records the delays instead of waiting them out."""

    delays: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def connect(
    gw: Gateway,
    email: str,
    password: str,
    root: Path,
    *,
    policy: RetryPolicy = QUICK,
    sleep: Callable[[float], None] | None = None,
    tus_chunk: int | None = None,
) -> tuple[SupabaseRemote, SessionStore]:
    session = sign_in_password(gw.url, gw.anon_key, email, password, policy)
    store = SessionStore(root / "sync")
    store.save(session)
    blobs = BlobStore(root / "blobs")
    kwargs = {} if tus_chunk is None else {"tus_chunk": tus_chunk}
    remote = open_remote(session, store, policy, lambda: blobs.writer(1 << 30), sleep=sleep, **kwargs)  # type: ignore[arg-type]
    return remote, store

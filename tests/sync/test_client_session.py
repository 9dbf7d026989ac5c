"""The Supabase session of the sync client against the gateway's Auth: refresh before expiry
and on 401, single flight, the rotated token persisted before use, sign-out on reuse."""

from __future__ import annotations

import dataclasses
import os
import stat
import threading
import time
from pathlib import Path

import httpx
import pytest

from sync.errors import SyncSignedOut
from sync.session import Session, SessionManager, SessionStore
from sync.supabase.auth import AuthClient
from tests.supabase_gateway import Fault, Gateway
from tests.sync.client_fixtures import connect
from tests.sync.conftest import Account


def _since(gw: Gateway, mark: int, path: str = "") -> list[tuple[str, int | None]]:
    return [(r.path, r.status) for r in gw.log[mark:] if r.path.startswith(path)]


def test_session_file_is_private(gateway: Gateway, account: Account, tmp_path: Path) -> None:
    remote, store = connect(gateway, account.email, account.password, tmp_path)
    remote.close()
    mode = stat.S_IMODE(os.stat(store.path).st_mode)
    assert mode == 0o600 and stat.S_IMODE(os.stat(store.directory).st_mode) == 0o700
    loaded = store.load()
    assert loaded is not None and loaded.user_id == account.user_id and loaded.active
    assert "access_token" not in loaded.public() and "refresh_token" not in str(loaded.public())


def test_expired_token_is_refreshed_on_401_and_the_request_resent(
    gateway: Gateway, account: Account, tmp_path: Path
) -> None:
    remote, store = connect(gateway, account.email, account.password, tmp_path)
    old = remote.manager.session
    gateway.clock.advance(3700)  # the server now sees the access token as expired
    mark = len(gateway.log)
    rows, _, _ = remote.pull(None, 10)
    assert rows == []
    assert _since(gateway, mark) == [
        ("/rest/v1/rpc/sync_pull", 401),
        ("/auth/v1/token", 200),
        ("/rest/v1/rpc/sync_pull", 200),
    ]
    new = store.load()
    assert new is not None and new.refresh_token == remote.manager.session.refresh_token != old.refresh_token
    remote.close()


def test_refresh_happens_before_expiry_without_a_401(gateway: Gateway, account: Account, tmp_path: Path) -> None:
    remote, _ = connect(gateway, account.email, account.password, tmp_path)
    s = remote.manager.session
    remote.manager._session = dataclasses.replace(s, expires_at=time.time() + 5)  # inside the 60 s margin
    mark = len(gateway.log)
    remote.pull(None, 10)
    assert _since(gateway, mark) == [("/auth/v1/token", 200), ("/rest/v1/rpc/sync_pull", 200)]
    remote.close()


def test_concurrent_401s_refresh_once(gateway: Gateway, account: Account, tmp_path: Path) -> None:
    remote, _ = connect(gateway, account.email, account.password, tmp_path)
    gateway.clock.advance(3700)
    mark = len(gateway.log)
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def call() -> None:
        barrier.wait()
        try:
            remote.pull(None, 10)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [s for p, s in _since(gateway, mark, "/auth/v1/token")] == [200]  # one refresh for all eight
    assert remote.manager.session.active and remote.manager.refreshes == 1
    remote.close()


class RecordingStore(SessionStore):
    """Notes, at each save, which access token the manager was still handing out."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.manager: SessionManager | None = None
        self.saves: list[tuple[str | None, str | None]] = []

    def save(self, session: Session) -> None:
        super().save(session)
        in_use = self.manager.session.access_token if self.manager is not None else None
        self.saves.append((session.refresh_token, in_use))


def test_rotated_refresh_token_is_persisted_before_it_is_used(
    gateway: Gateway, account: Account, tmp_path: Path
) -> None:
    remote, plain = connect(gateway, account.email, account.password, tmp_path)
    old = remote.manager.session
    store = RecordingStore(plain.directory)
    manager = SessionManager(store, old, AuthClient(remote.http))
    store.manager = manager
    remote.http.tokens = manager
    remote.manager = manager
    gateway.clock.advance(3700)
    remote.pull(None, 10)
    new_refresh, in_use_while_saving = store.saves[-1]
    assert in_use_while_saving == old.access_token  # the new token was on disk before anyone had it
    assert new_refresh == manager.session.refresh_token != old.refresh_token
    # a restart from the file continues the session (the persisted token is the live one)
    restarted = SessionManager(SessionStore(plain.directory), store.load() or old, AuthClient(remote.http))
    gateway.clock.advance(3700)
    assert restarted.refresh(restarted.session.access_token)
    remote.close()


def test_reused_refresh_token_signs_out(gateway: Gateway, account: Account, tmp_path: Path) -> None:
    remote, store = connect(gateway, account.email, account.password, tmp_path)
    token = remote.manager.session.refresh_token
    # someone else (the desktop app, a copied file) refreshes the same token first
    with httpx.Client(base_url=gateway.url, headers={"apikey": gateway.anon_key}) as c:
        assert c.post(
            "/auth/v1/token", params={"grant_type": "refresh_token"}, json={"refresh_token": token}
        ).is_success
    gateway.clock.advance(3700)  # well past Supabase's 10 s reuse window
    with pytest.raises(SyncSignedOut) as err:
        remote.pull(None, 10)
    assert err.value.detail == {"reason": "refresh_token_already_used"}
    saved = store.load()
    assert saved is not None and not saved.active and saved.signed_out_reason == "refresh_token_already_used"
    assert saved.access_token is None and saved.refresh_token is None
    with pytest.raises(SyncSignedOut):  # no further network attempts while signed out
        mark = len(gateway.log)
        remote.pull(None, 10)
    assert len(gateway.log) == mark
    remote.close()


def test_revoked_session_signs_out(gateway: Gateway, account: Account, tmp_path: Path) -> None:
    remote, store = connect(gateway, account.email, account.password, tmp_path)
    access = remote.manager.session.access_token
    with httpx.Client(base_url=gateway.url, headers={"apikey": gateway.anon_key}) as c:
        assert c.post("/auth/v1/logout", headers={"Authorization": f"Bearer {access}"}).status_code == 204
    gateway.clock.advance(3700)
    with pytest.raises(SyncSignedOut):
        remote.pull(None, 10)
    saved = store.load()
    assert saved is not None and saved.signed_out_reason in {"session_not_found", "refresh_token_not_found"}
    remote.close()


def test_lost_refresh_response_is_retried_within_the_reuse_window(
    gateway: Gateway, account: Account, tmp_path: Path
) -> None:
    remote, _ = connect(gateway, account.email, account.password, tmp_path)
    gateway.clock.advance(3700)
    gateway.faults.script(Fault.LOST_RESPONSE, "/auth/v1/token")  # rotated on the server, answer lost
    mark = len(gateway.log)
    remote.pull(None, 10)
    assert [s for _, s in _since(gateway, mark, "/auth/v1/token")] == [None, 200]
    assert remote.manager.session.active
    remote.close()

"""Storage from the sync client: plain upload up to 6 MB, TUS above (resuming after dropped
and lost chunks), content-addressed keys, streamed downloads."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from sync.errors import SupabaseError
from sync.supabase.storage import TUS_CHUNK
from sync.versions import storage_key
from tests.supabase_gateway import Fault, Gateway
from tests.sync.client_fixtures import Sleeps, connect
from tests.sync.conftest import Account
from tests.sync.devices import Device


def _file(tmp_path: Path, size: int) -> tuple[Path, str]:
    data = os.urandom(size)
    path = tmp_path / f"f-{size}"
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def _key(account: Account, sha: str) -> str:
    return storage_key(account.user_id, str(uuid.uuid4()), sha)


def test_plain_upload_is_content_addressed_and_idempotent(gateway: Gateway, account: Account, tmp_path: Path) -> None:
    remote, _ = connect(gateway, account.email, account.password, tmp_path)
    path, sha = _file(tmp_path, 100_000)
    key = _key(account, sha)
    mark = len(gateway.log)
    assert remote.upload(key, path, 100_000, "application/pdf") is True
    assert remote.upload(key, path, 100_000, "application/pdf") is False  # already there: success
    assert [(r.method, r.path) for r in gateway.log[mark:]] == [("POST", f"/storage/v1/object/documents/{key}")] * 2
    assert remote.storage.read(key) == path.read_bytes()
    remote.close()


def test_lost_upload_response_is_harmless(gateway: Gateway, account: Account, tmp_path: Path) -> None:
    remote, _ = connect(gateway, account.email, account.password, tmp_path, sleep=Sleeps())
    path, sha = _file(tmp_path, 5000)
    key = _key(account, sha)
    gateway.faults.script(Fault.LOST_RESPONSE, "/storage/v1/object/documents")
    assert remote.upload(key, path, 5000, "text/plain") is False  # stored by the lost attempt
    assert remote.storage.read(key) == path.read_bytes()
    remote.close()


def test_files_over_6_mb_go_up_resumably_in_6_mb_chunks(gateway: Gateway, account: Account, tmp_path: Path) -> None:
    remote, _ = connect(gateway, account.email, account.password, tmp_path)
    size = 2 * TUS_CHUNK + 12345
    path, sha = _file(tmp_path, size)
    key = _key(account, sha)
    mark = len(gateway.log)
    assert remote.upload(key, path, size, "application/octet-stream") is True
    calls = [(r.method, r.path.split("/resumable")[0], r.status) for r in gateway.log[mark:]]
    assert calls == [("POST", "/storage/v1/upload", 201)] + [("PATCH", "/storage/v1/upload", 204)] * 3
    sha_back, n = remote.download(key)
    assert (sha_back, n) == (sha, size)
    remote.close()


@pytest.mark.parametrize("fault", [Fault.DROP, Fault.LOST_RESPONSE, Fault.SERVER_ERROR])
def test_tus_resumes_from_the_server_offset(gateway: Gateway, account: Account, tmp_path: Path, fault: Fault) -> None:
    remote, _ = connect(gateway, account.email, account.password, tmp_path, sleep=Sleeps())
    size = 2 * TUS_CHUNK + 1000
    path, sha = _file(tmp_path, size)
    key = _key(account, sha)
    # fail the second chunk: dropped (not applied), lost (applied, answer lost) or a 5xx
    original = gateway.faults.decide
    seen = 0

    def decide(method: str, p: str):  # type: ignore[no-untyped-def]
        nonlocal seen
        if method == "PATCH":
            seen += 1
            if seen == 2:
                gateway.faults.script(fault, "/storage/v1/upload/resumable", "PATCH", status=503)
        return original(method, p)

    gateway.faults.decide = decide  # type: ignore[method-assign]
    try:
        assert remote.upload(key, path, size, "application/octet-stream") is True
    finally:
        gateway.faults.decide = original  # type: ignore[method-assign]
    assert remote.storage.tus_resumes == 1
    heads = [r for r in gateway.log if r.method == "HEAD"]
    assert heads and heads[-1].status == 200
    assert remote.download(key) == (sha, size)
    remote.close()


def test_download_of_a_missing_object_is_not_found(gateway: Gateway, account: Account, tmp_path: Path) -> None:
    remote, _ = connect(gateway, account.email, account.password, tmp_path)
    with pytest.raises(SupabaseError) as err:
        remote.download(_key(account, "0" * 64))
    assert err.value.kind == "not_found"
    assert list((tmp_path / "blobs" / "tmp").iterdir()) == []  # the partial download was removed
    remote.close()


def test_a_big_unindexable_file_syncs_through_tus(
    gateway: Gateway, account: Account, device_factory: Callable[..., Device], tmp_path: Path
) -> None:
    a = device_factory("big-a")
    b = device_factory("big-b")
    for dev in (a, b):
        dev.sign_in(gateway, account.email, account.password)
    data = os.urandom(TUS_CHUNK + 500_000)
    src = tmp_path / "archive.bin"
    src.write_bytes(data)
    with src.open("rb") as fh:
        key, size = a.sv.ingest.blobs.put_file(fh, 1 << 30)
    doc, _ = a.sv.ingest.add_upload(key, size, "archive.bin", "default", ())
    a.wait_idle()
    mark = len(gateway.log)
    assert a.sync()["uploaded"] == 1
    assert any(r.path == "/storage/v1/upload/resumable" for r in gateway.log[mark:])
    assert b.sync()["downloads"] == 1
    with b.sv.store.read() as c:
        blob = c.execute("SELECT blob_key FROM documents WHERE id = ?", (doc.id,)).fetchone()[0]
    assert b.sv.ingest.blobs.path_of(blob).read_bytes() == data

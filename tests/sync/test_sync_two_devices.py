"""Two sidecars of one user through the gateway: what one device does, the other sees —
adds, edits, renames, deletes — and concurrent edits keep both versions."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from sync.engine import EngineConfig
from tests.supabase_gateway import Fault, Gateway
from tests.sync.conftest import Account
from tests.sync.devices import Device, cloud_snapshot

CATS = "Cats are small carnivorous mammals. They sleep most of the day and purr when content."
DOGS = "Dogs were domesticated from wolves; they are loyal, playful and need daily walks."


def _settle(*devices: Device, rounds: int = 3) -> None:
    for _ in range(rounds):
        for dev in devices:
            dev.wait_idle()
            dev.sync()
    for dev in devices:
        dev.wait_idle()


def test_add_on_one_device_arrives_with_its_embeddings(pair: tuple[Device, Device]) -> None:
    a, b = pair
    doc_id = a.add(CATS, "cats.txt")
    a.wait_idle()
    report = a.sync()
    assert report["pushed"] == 1 and report["uploaded"] == 1 and report["chunks_pushed"] >= 1
    report = b.sync()
    assert report["pulled"] == 1 and report["downloads"] == 1
    sa, sb = a.snapshot()[doc_id], b.snapshot()[doc_id]
    assert sb["status"] == "synced" and sa["status"] == "synced"
    assert sb["chunks"] == sa["chunks"] and sb["sha256"] == sa["sha256"] and sb["filename"] == "cats.txt"
    # the remote vectors are used as they are (same model): no embedding job ran on B
    for va, vb in zip(sa["vectors"], sb["vectors"], strict=True):
        assert np.array_equal(va, vb)
    with b.sv.store.read() as c:
        assert c.execute("SELECT count(*) FROM jobs").fetchone()[0] == 0
        blob = c.execute("SELECT blob_key FROM documents WHERE id = ?", (doc_id,)).fetchone()[0]
    assert b.sv.ingest.blobs.path_of(blob).read_text() == CATS  # eager download of the original


def test_edit_rename_delete_propagate(pair: tuple[Device, Device]) -> None:
    a, b = pair
    doc_id = a.add(CATS, "pets.txt")
    _settle(a, b)
    with b.sv.store.read() as c:
        chunk_ids = [r[0] for r in c.execute("SELECT id FROM chunks WHERE document_id = ?", (doc_id,))]
    b.rename(doc_id, "renamed.txt")
    _settle(b, a)
    assert a.snapshot()[doc_id]["filename"] == "renamed.txt"
    with b.sv.store.read() as c:  # a rename keeps chunks and vectors (no re-embedding)
        assert [r[0] for r in c.execute("SELECT id FROM chunks WHERE document_id = ?", (doc_id,))] == chunk_ids
    a.edit(doc_id, DOGS)
    _settle(a, b)
    assert DOGS in [t for _, t, *_ in b.snapshot()[doc_id]["chunks"]]
    assert b.snapshot()[doc_id]["filename"] == "renamed.txt"
    b.delete(doc_id)
    _settle(b, a)
    assert doc_id not in a.live_ids() and doc_id not in b.live_ids()
    assert a.outbox_count() == b.outbox_count() == 0


def test_concurrent_edits_keep_both_versions(pair: tuple[Device, Device], account: Account, admin_query: Any) -> None:
    a, b = pair
    doc_id = a.add(CATS, "shared.txt")
    _settle(a, b)
    a.edit(doc_id, "Version from laptop A: cats prefer warm windowsills.")
    b.edit(doc_id, "Version from desktop B: cats chase laser pointers.")
    a.wait_idle()
    b.wait_idle()
    a.sync()  # A's edit is first on the server
    report = b.sync()  # B meets it: one of the two becomes a conflicted copy
    assert report["conflicts"] == 1
    _settle(a, b)
    sa, sb = a.snapshot(), b.snapshot()
    assert sa.keys() == sb.keys() and len(sa) == 2
    texts = {t for d in sa.values() for _, t, *_ in d["chunks"]}
    assert "Version from laptop A: cats prefer warm windowsills." in texts
    assert "Version from desktop B: cats chase laser pointers." in texts
    copy_id = next(i for i in sa if i != doc_id)
    assert "conflicted copy" in sa[copy_id]["filename"]
    conflicts = b.sv.sync.conflicts(10, None)
    assert [(c["document_id"], c["copy_document_id"]) for c in conflicts] == [(doc_id, copy_id)]
    cloud = cloud_snapshot(admin_query, account.user_id)
    assert set(cloud) == set(sa)
    for i in sa:
        assert cloud[i]["chunks"] == sa[i]["chunks"] == sb[i]["chunks"]


def test_delete_against_edit_keeps_the_edit(pair: tuple[Device, Device]) -> None:
    a, b = pair
    doc_id = a.add(CATS, "fragile.txt")
    _settle(a, b)
    b.edit(doc_id, "B kept working on this document while A deleted it.")
    b.wait_idle()
    b.sync()
    a.delete(doc_id)
    a.sync()  # A's tombstone loses or wins; either way B's words survive
    _settle(a, b)
    texts = [t for d in a.snapshot().values() for _, t, *_ in d["chunks"]]
    assert "B kept working on this document while A deleted it." in texts
    assert a.snapshot().keys() == b.snapshot().keys()


def test_lost_push_response_applies_once(pair: tuple[Device, Device], gateway: Gateway) -> None:
    a, b = pair
    doc_id = a.add(CATS, "once.txt")
    a.wait_idle()
    before = len(gateway.requests("/rest/v1/rpc/sync_push"))
    gateway.faults.script(Fault.LOST_RESPONSE, "/rest/v1/rpc/sync_push")
    report = a.sync()  # the retry gets the stored result of the applied change
    assert report["pushed"] == 1 and report["conflicts"] == 0
    _settle(a, b)
    assert a.live_ids() == b.live_ids() == [doc_id]
    pushes = gateway.requests("/rest/v1/rpc/sync_push")[before:]
    assert [p.fault for p in pushes[:2]] == [Fault.LOST_RESPONSE, Fault.NONE]


def test_token_expiry_in_the_middle_of_a_push(
    pair: tuple[Device, Device], gateway: Gateway, device_factory: Callable[..., Device]
) -> None:
    a, b = pair
    ids = [a.add(f"note {i}: {CATS}", f"n{i}.txt") for i in range(4)]
    a.wait_idle()
    # tiny batches, so the push takes several requests; the access token expires after the 2nd
    a.sv.sync.config = dataclasses.replace(
        a.sv.sync.config, engine=EngineConfig(push_change_budget=2, chunks_per_change=1, push_chunk_budget=1)
    )
    before = len(gateway.log)
    a.transport.at_request(6, lambda _r: gateway.clock.advance(3700))
    report = a.sync()
    assert report["pushed"] == 4
    assert a.sv.sync.sync_status()["signed_in"]
    log = gateway.log[before:]
    expired = [i for i, r in enumerate(log) if r.path == "/rest/v1/rpc/sync_push" and r.status == 401]
    assert expired, "no push met the expired token"
    refresh = [i for i, r in enumerate(log) if r.path == "/auth/v1/token" and r.status == 200]
    assert refresh and refresh[0] > expired[0]  # refreshed on the 401, then the push was resent
    assert log[refresh[0] + 1].path == "/rest/v1/rpc/sync_push" and log[refresh[0] + 1].status == 200
    _settle(a, b)
    assert sorted(ids) == sorted(a.live_ids()) == sorted(b.live_ids())


def test_pull_never_overwrites_a_document_being_reindexed(pair: tuple[Device, Device]) -> None:
    a, b = pair
    doc_id = a.add(CATS, "busy.txt")
    _settle(a, b)
    a.edit(doc_id, "A's edit reaches the cloud first.")
    a.wait_idle()
    a.sync()
    b.sv.ingest.worker.pause()
    b.edit(doc_id, "B's edit is still being indexed while B syncs.")  # queued ingest job, no outbox row yet
    report = b.sync()
    assert report["pulled"] == 0 and report["skipped"] >= 1  # A's version is held back, not applied
    b.sv.ingest.worker.resume()
    _settle(b, a)
    texts = {t for d in a.snapshot().values() for _, t, *_ in d["chunks"]}
    assert {"A's edit reaches the cloud first.", "B's edit is still being indexed while B syncs."} <= texts
    assert _comparable_keys(a) == _comparable_keys(b)


def _comparable_keys(dev: Device) -> dict[str, tuple[str, list[Any]]]:
    return {i: (d["filename"], d["chunks"]) for i, d in dev.snapshot().items()}


def test_another_user_sees_and_touches_nothing(
    pair: tuple[Device, Device], gateway: Gateway, device_factory: Callable[..., Device]
) -> None:
    import pytest

    from sync.errors import SupabaseError
    from sync.versions import Version

    a, _ = pair
    doc_id = a.add(CATS, "private.txt")
    a.wait_idle()
    a.sync()
    key = a.sv.sync.local.share_target(doc_id)[1]
    assert key is not None
    mallory = device_factory("mallory")
    gateway.create_user("mallory@example.com", "pw-pw-pw-pw")
    mallory.sign_in(gateway, "mallory@example.com", "pw-pw-pw-pw")
    assert mallory.sync()["pulled"] == 0 and mallory.live_ids() == []
    remote = mallory.sv.sync.remote
    assert remote is not None
    for attempt in (lambda: remote.sign(key, 60), lambda: remote.download(key)):
        with pytest.raises(SupabaseError) as err:
            attempt()
        assert err.value.kind in ("not_found", "permanent")
    v = Version(2**60, "mallory")
    [result] = remote.push([{"change_id": "9b2f7c44-6a51-4d0e-8c1e-2f5a7e9d3b10", "kind": "document",
                             "base_hlc": None, "base_device": None,
                             "document": {"id": doc_id, "hlc": v.hlc, "origin_device": v.device,
                                          "filename": "owned.txt", "deleted": False, "storage_key": None}}])  # fmt: skip
    assert result["status"] == "rejected"  # the id is taken, by a row mallory cannot see
    a.sync()
    assert a.snapshot()[doc_id]["filename"] == "private.txt"


def test_chunks_of_another_model_are_embedded_locally(pair: tuple[Device, Device]) -> None:
    import hashlib
    import uuid

    from sync.versions import Version, chunk_uuid

    a, b = pair
    remote = a.sv.sync.remote
    assert remote is not None
    doc_id, v = str(uuid.uuid4()), Version(1 << 50, "a-device-with-another-model")
    texts = ["Penguins cannot fly but swim very well.", "Owls hunt at night and turn their heads far around."]
    rng = np.random.default_rng(3)
    vecs = rng.standard_normal((2, 384)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    chunks = [{"id": chunk_uuid(doc_id, v, i), "ordinal": i, "text": t, "char_start": 0, "char_end": len(t),
               "page": None, "heading_path": [], "model_id": "some-other-model", "embedding": vecs[i].tolist()}
              for i, t in enumerate(texts)]  # fmt: skip
    results = remote.push([
        {"change_id": str(uuid.uuid4()), "kind": "chunks", "document_id": doc_id, "doc_hlc": v.hlc,
         "doc_device": v.device, "chunks": chunks},
        {"change_id": str(uuid.uuid4()), "kind": "document", "base_hlc": None, "base_device": None,
         "document": {"id": doc_id, "hlc": v.hlc, "origin_device": v.device, "filename": "birds.txt",
                      "sha256": hashlib.sha256(b"birds").hexdigest(), "deleted": False}},
    ])  # fmt: skip
    assert [r["status"] for r in results] == ["accepted", "accepted"]
    assert b.sync()["pulled"] == 1
    with b.sv.store.read() as c:
        status = c.execute("SELECT status FROM documents WHERE id = ?", (doc_id,)).fetchone()[0]
    assert status in ("chunked", "embedded")  # stored at once, searchable by keyword
    b.wait_idle()  # the embed_missing job
    snap = b.snapshot()[doc_id]
    assert snap["status"] == "embedded"
    local = b.sv.embedding.embedder.embed(texts)
    for got, want, theirs in zip(snap["vectors"], local, vecs, strict=True):
        assert np.allclose(got, want, atol=1e-5) and not np.allclose(got, theirs, atol=1e-2)


def test_a_file_indexed_in_place_syncs_and_detaches_when_edited_elsewhere(
    pair: tuple[Device, Device], tmp_path: Any
) -> None:
    a, b = pair
    src = tmp_path / "in-place.txt"
    src.write_text("A file the user keeps in their own folder, indexed where it lies.")
    doc, _ = a.sv.ingest.add_path(str(src), "default", ())
    a.wait_idle()
    assert a.sync()["uploaded"] == 1  # copied aside while hashed, then uploaded
    b.sync()
    assert _text(b, doc.id) == src.read_text()
    b.edit(doc.id, "Edited on the other device.")
    _settle(b, a)
    with a.sv.store.read() as c:
        source, path = c.execute("SELECT source, path FROM documents WHERE id = ?", (doc.id,)).fetchone()
    # the index follows the cloud; the user's file is left alone and no longer claims the document
    assert (source, path) == ("remote", None)
    assert _text(a, doc.id) == "Edited on the other device."
    assert src.read_text().startswith("A file the user keeps")


def _text(dev: Device, doc_id: str) -> str:
    return " ".join(t for _, t, *_ in dev.snapshot()[doc_id]["chunks"])

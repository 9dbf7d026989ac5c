"""A second user can neither read nor write the first user's rows or objects, through any
endpoint of the gateway (RPC, table reads/writes, Storage objects, signed URLs, TUS)."""

from __future__ import annotations

import hashlib

from tests.supabase_gateway import Gateway
from tests.sync.conftest import SignedIn
from tests.sync.helpers import chunks_change, document_change, new_id, unit_vectors


def _alice_document(alice: SignedIn) -> tuple[str, str, bytes]:
    data = b"alice's private file"
    sha = hashlib.sha256(data).hexdigest()
    doc = new_id()
    key = f"{alice.user_id}/{doc}/{sha}"
    r = alice.client.post(
        f"/storage/v1/object/documents/{key}",
        content=data,
        headers={"Content-Type": "application/pdf"},
    )
    assert r.status_code == 200, r.text
    vec = unit_vectors(1, seed=11)
    r = alice.client.post(
        "/rest/v1/rpc/sync_push",
        json={
            "p_changes": [
                chunks_change(doc, 10, "A", ["secret"], vec),
                document_change(doc, 10, "A", sha256=sha, storage_key=key, title="secret"),
            ]
        },
    )
    assert r.status_code == 200 and all(x["status"] == "accepted" for x in r.json()["results"]), r.text
    return doc, key, data


def test_rpc_and_table_reads_hide_other_users_rows(alice: SignedIn, bob: SignedIn) -> None:
    doc, _, _ = _alice_document(alice)
    pull = bob.client.post("/rest/v1/rpc/sync_pull", json={"p_cursor": None})
    assert pull.status_code == 200 and pull.json()["changes"] == []
    chunks = bob.client.post(
        "/rest/v1/rpc/sync_pull_chunks",
        json={"p_documents": [{"id": doc, "hlc": 10, "origin_device": "A"}]},
    )
    assert chunks.status_code == 200 and chunks.json()["chunks"] == []
    vec = [float(x) for x in unit_vectors(1, seed=11)[0]]
    match = bob.client.post("/rest/v1/rpc/match_chunks", json={"query_embedding": vec})
    assert match.status_code == 200 and match.json() == []
    for table, column in (
        ("documents", "id"),
        ("chunks", "document_id"),
        ("sync_push_results", "user_id"),
    ):
        value = alice.user_id if column == "user_id" else doc
        r = bob.client.get(f"/rest/v1/{table}", params={"select": "*", column: f"eq.{value}"})
        assert r.status_code == 200 and r.json() == [], (table, r.text)
        mine = alice.client.get(f"/rest/v1/{table}", params={"select": "*", column: f"eq.{value}"})
        assert mine.status_code == 200 and len(mine.json()) >= 1, (table, mine.text)


def test_rpc_and_table_writes_cannot_touch_other_users_rows(alice: SignedIn, bob: SignedIn) -> None:
    doc, _, _ = _alice_document(alice)
    # Pushing a change to alice's document id is a duplicate key for bob, never an overwrite.
    r = bob.client.post(
        "/rest/v1/rpc/sync_push",
        json={"p_changes": [document_change(doc, 99, "B", base=(10, "A"), title="pwned")]},
    )
    result = r.json()["results"][0]
    assert result["status"] == "rejected" and result["error"]["code"] == "23505"
    # Chunks for alice's document id land (if at all) in bob's own rows only.
    bob.client.post("/rest/v1/rpc/sync_push", json={"p_changes": [chunks_change(doc, 99, "B", ["pwned"])]})
    # Direct table writes: update filtered out by RLS (0 rows), insert violating RLS -> 403.
    r = bob.client.patch(
        "/rest/v1/documents",
        params={"id": f"eq.{doc}"},
        json={"title": "pwned"},
        headers={"Prefer": "return=representation"},
    )
    assert r.status_code == 200 and r.json() == []
    r = bob.client.post(
        "/rest/v1/documents",
        json={"id": new_id(), "user_id": alice.user_id, "hlc": 1, "origin_device": "B"},
    )
    assert r.status_code == 403 and r.json()["code"] == "42501", r.text
    r = bob.client.delete(
        "/rest/v1/chunks",
        params={"document_id": f"eq.{doc}", "user_id": f"eq.{alice.user_id}"},
        headers={"Prefer": "return=representation"},
    )
    assert r.status_code == 200 and r.json() == []
    # Documents are tombstoned, never deleted: DELETE is not granted even on your own rows.
    r = alice.client.delete("/rest/v1/documents", params={"id": f"eq.{doc}"})
    assert r.status_code == 403 and r.json()["code"] == "42501"
    # Alice's data is intact.
    rows = alice.client.post("/rest/v1/rpc/sync_pull", json={}).json()["changes"]
    assert [(x["id"], x["title"], x["hlc"]) for x in rows] == [(doc, "secret", 10)]
    chunks = alice.client.get("/rest/v1/chunks", params={"select": "text,user_id", "document_id": f"eq.{doc}"}).json()
    assert chunks == [{"text": "secret", "user_id": alice.user_id}]


def test_storage_objects_are_private_to_their_owner(gateway: Gateway, alice: SignedIn, bob: SignedIn) -> None:
    _, key, data = _alice_document(alice)
    base = "/storage/v1/object"
    r = bob.client.get(f"{base}/authenticated/documents/{key}")
    assert r.status_code == 400 and r.json()["code"] == "NoSuchKey"
    r = bob.client.get(f"{base}/documents/{key}")
    assert r.status_code == 400 and r.json()["code"] == "NoSuchKey"
    r = bob.client.post(f"{base}/sign/documents/{key}", json={"expiresIn": 60})
    assert r.status_code == 400 and r.json()["code"] == "NoSuchKey"
    for method in ("POST", "PUT"):
        r = bob.client.request(method, f"{base}/documents/{key}", content=b"overwrite", headers={"x-upsert": "true"})
        assert r.status_code == 400, r.text
        assert r.json()["code"] in ("AccessDenied", "KeyAlreadyExists")
    r = bob.client.post(f"{base}/documents/{alice.user_id}/{new_id()}/x", content=b"plant")
    assert r.status_code == 400 and r.json() == {
        "statusCode": "403",
        "code": "AccessDenied",
        "error": "AccessDenied",
        "message": "new row violates row-level security policy",
    }
    r = bob.client.request("DELETE", f"{base}/documents", json={"prefixes": [key]})
    assert r.status_code == 200 and r.json() == []
    r = bob.client.post(
        "/storage/v1/upload/resumable",
        headers={
            "Tus-Resumable": "1.0.0",
            "Upload-Length": "5",
            "Upload-Metadata": _tus_meta("documents", f"{alice.user_id}/{new_id()}/y"),
        },
    )
    assert r.status_code == 403 and r.json()["code"] == "AccessDenied"
    # Still there, unchanged, for alice.
    r = alice.client.get(f"{base}/authenticated/documents/{key}")
    assert r.status_code == 200 and r.content == data
    del gateway


def _tus_meta(bucket: str, name: str) -> str:
    import base64

    def b64(s: str) -> str:
        return base64.b64encode(s.encode()).decode()

    return f"bucketName {b64(bucket)},objectName {b64(name)},contentType {b64('text/plain')}"


def test_anonymous_callers_get_nothing(gateway: Gateway, alice: SignedIn) -> None:
    import httpx

    _alice_document(alice)
    with httpx.Client(
        base_url=gateway.url,
        headers={"apikey": gateway.anon_key, "Authorization": f"Bearer {gateway.anon_key}"},
    ) as anon:
        r = anon.post("/rest/v1/rpc/sync_pull", json={})
        assert r.status_code == 401 and r.json()["code"] == "42501"  # anon: 401, not 403
        r = anon.get("/rest/v1/documents", params={"select": "*"})
        assert r.status_code == 401 and r.json()["code"] == "42501"
        r = anon.post("/rest/v1/rpc/sync_push", json={"p_changes": []})
        assert r.status_code == 401

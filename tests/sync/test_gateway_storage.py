"""Storage emulation: uploads, downloads, deletes, signed URLs, TUS resumable uploads."""

from __future__ import annotations

import base64
import hashlib
import urllib.parse

import httpx

from tests.supabase_gateway import Gateway
from tests.sync.conftest import SignedIn
from tests.sync.helpers import new_id

MIB = 1024 * 1024


def _key(user: SignedIn, data: bytes) -> str:
    return f"{user.user_id}/{new_id()}/{hashlib.sha256(data).hexdigest()}"


def test_upload_download_duplicate_upsert_delete(alice: SignedIn) -> None:
    data = b"%PDF-1.7 original"
    key = _key(alice, data)
    url = f"/storage/v1/object/documents/{key}"
    r = alice.client.post(url, content=data, headers={"Content-Type": "application/pdf"})
    assert r.status_code == 200 and r.json()["Key"] == f"documents/{key}"
    r = alice.client.post(url, content=data)
    assert r.status_code == 400 and r.json() == {
        "statusCode": "409",
        "code": "KeyAlreadyExists",
        "error": "KeyAlreadyExists",
        "message": "The resource already exists",
    }
    r = alice.client.post(url, content=b"v2", headers={"x-upsert": "true"})
    assert r.status_code == 200
    r = alice.client.get(f"/storage/v1/object/authenticated/documents/{key}")
    assert r.status_code == 200 and r.content == b"v2"
    r = alice.client.get(f"/storage/v1/object/authenticated/documents/{key}", headers={"Range": "bytes=1-"})
    assert r.status_code == 206 and r.content == b"2"
    r = alice.client.request(
        "DELETE",
        "/storage/v1/object/documents",
        json={"prefixes": [key, f"{alice.user_id}/missing"]},
    )
    assert r.status_code == 200 and [o["name"] for o in r.json()] == [key]
    r = alice.client.request("DELETE", "/storage/v1/object/documents", json={"prefixes": [key]})
    assert r.status_code == 200 and r.json() == []  # idempotent
    r = alice.client.get(f"/storage/v1/object/authenticated/documents/{key}")
    assert r.status_code == 400 and r.json()["code"] == "NoSuchKey"


def test_invalid_keys_and_buckets(alice: SignedIn) -> None:
    for bad in ("é.pdf", "a#b", "a%b", "tab\there", "x[1]", 'quote"d', "a{b}", "back\\slash"):
        path = urllib.parse.quote(f"{alice.user_id}/{bad}")
        r = alice.client.post(f"/storage/v1/object/documents/{path}", content=b"x")
        assert r.status_code == 400 and r.json()["code"] == "InvalidKey", bad
    r = alice.client.post(f"/storage/v1/object/nobucket/{alice.user_id}/x", content=b"x")
    assert r.status_code == 400 and r.json()["code"] == "NoSuchBucket"
    r = alice.client.request("DELETE", "/storage/v1/object/documents", json={"prefixes": []})
    assert r.status_code == 400


def test_signed_url_serves_without_credentials_until_it_expires(gateway: Gateway, alice: SignedIn) -> None:
    data = b"shared"
    key = _key(alice, data)
    alice.client.post(f"/storage/v1/object/documents/{key}", content=data)
    r = alice.client.post(f"/storage/v1/object/sign/documents/{key}", json={"expiresIn": 60})
    assert r.status_code == 200
    signed = r.json()["signedURL"]
    assert signed.startswith(f"/object/sign/documents/{key}?token=")
    with httpx.Client(base_url=gateway.url) as anyone:
        r = anyone.get(f"/storage/v1{signed}")
        assert r.status_code == 200 and r.content == data
        tampered = signed.replace(key, _key(alice, b"other"))
        r = anyone.get(f"/storage/v1{tampered}")
        assert r.status_code == 400 and r.json()["code"] == "InvalidSignature"
        gateway.clock.advance(61)
        r = anyone.get(f"/storage/v1{signed}")
        assert r.status_code == 400 and r.json()["code"] == "InvalidJWT"
    r = alice.client.post(f"/storage/v1/object/sign/documents/{key}", json={"expiresIn": 0})
    assert r.status_code == 400


def _meta(**items: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in items.items())


def test_tus_resumable_upload_in_6_mib_chunks_with_resume(alice: SignedIn) -> None:
    data = bytes(range(256)) * (13 * MIB // 256) + b"tail"  # 13 MiB + 4 bytes -> 3 chunks
    key = _key(alice, data)
    tus = {"Tus-Resumable": "1.0.0"}
    r = alice.client.post(
        "/storage/v1/upload/resumable",
        headers={
            **tus,
            "Upload-Length": str(len(data)),
            "Upload-Metadata": _meta(bucketName="documents", objectName=key, contentType="application/pdf"),
        },
    )
    assert r.status_code == 201, r.text
    location = r.headers["Location"]
    patch = {**tus, "Content-Type": "application/offset+octet-stream"}
    r = alice.client.patch(location, content=data[: 6 * MIB], headers={**patch, "Upload-Offset": "0"})
    assert r.status_code == 204 and r.headers["Upload-Offset"] == str(6 * MIB)
    # A chunk that is not 6 MiB (and not the last) is refused; a wrong offset is a 409.
    r = alice.client.patch(location, content=data[6 * MIB : 7 * MIB], headers={**patch, "Upload-Offset": str(6 * MIB)})
    assert r.status_code == 400
    r = alice.client.patch(location, content=data[: 6 * MIB], headers={**patch, "Upload-Offset": "0"})
    assert r.status_code == 409
    # Resume: ask the server where we are.
    r = alice.client.head(location, headers=tus)
    assert r.status_code == 200 and r.headers["Upload-Offset"] == str(6 * MIB)
    offset = 6 * MIB
    while offset < len(data):
        chunk = data[offset : offset + 6 * MIB]
        r = alice.client.patch(location, content=chunk, headers={**patch, "Upload-Offset": str(offset)})
        assert r.status_code == 204
        offset += len(chunk)
    r = alice.client.get(f"/storage/v1/object/authenticated/documents/{key}")
    assert r.status_code == 200 and r.content == data
    assert r.headers["content-type"] == "application/pdf"


def test_tus_rejects_duplicates_without_upsert(alice: SignedIn) -> None:
    key = _key(alice, b"x")
    alice.client.post(f"/storage/v1/object/documents/{key}", content=b"x")
    r = alice.client.post(
        "/storage/v1/upload/resumable",
        headers={
            "Tus-Resumable": "1.0.0",
            "Upload-Length": "1",
            "Upload-Metadata": _meta(bucketName="documents", objectName=key),
        },
    )
    assert r.status_code == 409 and r.json()["code"] == "KeyAlreadyExists"

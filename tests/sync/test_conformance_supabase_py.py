"""The official ``supabase`` Python client (test-only dependency) against the gateway: it must
parse our responses and errors exactly as it parses Supabase's."""

from __future__ import annotations

import hashlib
import uuid
import warnings
from collections.abc import Iterator

import httpx
import pytest

from tests.supabase_gateway import Gateway
from tests.sync.helpers import chunks_change, document_change, new_id, unit_vectors

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from postgrest.exceptions import APIError
    from storage3.exceptions import StorageApiError
    from supabase import Client, create_client
    from supabase.lib.client_options import SyncClientOptions
    from supabase_auth.errors import AuthApiError

# supabase-py 2.34.1 passes its own deprecated 'timeout' argument internally.
pytestmark = pytest.mark.filterwarnings("ignore:The 'timeout' parameter is deprecated")


@pytest.fixture
def user(gateway: Gateway) -> tuple[str, str, str]:
    email = f"conf-{uuid.uuid4().hex[:8]}@example.com"
    return gateway.create_user(email, "pa55word!"), email, "pa55word!"


@pytest.fixture
def client(gateway: Gateway) -> Iterator[Client]:
    with httpx.Client(timeout=30) as http:  # owned here, so its sockets get closed
        yield create_client(
            gateway.url,
            gateway.anon_key,
            options=SyncClientOptions(auto_refresh_token=False, persist_session=False, httpx_client=http),
        )


def test_auth_sign_in_refresh_and_errors(client: Client, user: tuple[str, str, str]) -> None:
    user_id, email, password = user
    with pytest.raises(AuthApiError) as err:
        client.auth.sign_in_with_password({"email": email, "password": "wrong"})
    assert err.value.code == "invalid_credentials" and err.value.status == 400
    res = client.auth.sign_in_with_password({"email": email, "password": password})
    assert res.user is not None and res.user.id == user_id
    assert res.session is not None and res.session.expires_in == 3600
    old_refresh = res.session.refresh_token
    refreshed = client.auth.refresh_session()
    assert refreshed.session is not None
    assert refreshed.session.refresh_token != old_refresh
    got = client.auth.get_user()
    assert got is not None and got.user.email == email
    with pytest.raises(AuthApiError) as err:
        client.auth.refresh_session("never-issued")
    assert err.value.code == "refresh_token_not_found"
    client.auth.sign_out()


def test_rpc_table_select_and_api_errors(client: Client, user: tuple[str, str, str]) -> None:
    _, email, password = user
    client.auth.sign_in_with_password({"email": email, "password": password})
    doc = new_id()
    vec = unit_vectors(1, seed=21)
    pushed = client.rpc(
        "sync_push",
        {
            "p_changes": [
                chunks_change(doc, 10, "A", ["hello"], vec),
                document_change(doc, 10, "A", title="T"),
            ]
        },
    ).execute()
    assert [r["status"] for r in pushed.data["results"]] == ["accepted", "accepted"]
    pulled = client.rpc("sync_pull", {"p_cursor": None, "p_limit": 10}).execute()
    assert [r["id"] for r in pulled.data["changes"]] == [doc]
    hits = client.rpc("match_chunks", {"query_embedding": [float(x) for x in vec[0]], "match_count": 3}).execute()
    assert hits.data[0]["document_id"] == doc and hits.data[0]["similarity"] == pytest.approx(1)
    rows = client.table("documents").select("id,title").eq("id", doc).execute()
    assert rows.data == [{"id": doc, "title": "T"}]
    single = client.table("documents").select("title").eq("id", doc).single().execute()
    assert single.data == {"title": "T"}
    chunk = client.table("chunks").select("embedding").eq("document_id", doc).execute()
    assert isinstance(chunk.data[0]["embedding"], str)  # vectors come back as strings
    with pytest.raises(APIError) as err:
        client.rpc("sync_pull", {"p_cursor": "bogus"}).execute()
    assert err.value.code == "22023" and err.value.message == "invalid pull cursor"
    with pytest.raises(APIError) as err:
        client.rpc("no_such_function", {}).execute()
    assert err.value.code == "PGRST202"
    with pytest.raises(APIError) as err:
        client.table("documents").delete().eq("id", doc).execute()
    assert err.value.code == "42501"
    with pytest.raises(APIError) as err:
        client.table("nope").select("*").execute()
    assert err.value.code == "PGRST205"


def test_storage_roundtrip_and_exceptions(client: Client, user: tuple[str, str, str]) -> None:
    user_id, email, password = user
    client.auth.sign_in_with_password({"email": email, "password": password})
    data = b"conformance bytes"
    key = f"{user_id}/{new_id()}/{hashlib.sha256(data).hexdigest()}"
    bucket = client.storage.from_("documents")
    uploaded = bucket.upload(key, data, {"content-type": "application/pdf"})
    assert uploaded.path == key
    assert bucket.download(key) == data
    with pytest.raises(StorageApiError) as err:
        bucket.upload(key, data)
    assert err.value.code == "KeyAlreadyExists" and err.value.status == "409"
    with pytest.raises(StorageApiError) as err:
        bucket.upload(f"{user_id}/é.pdf", data)
    assert err.value.code == "InvalidKey"
    with pytest.raises(StorageApiError) as err:
        bucket.upload(f"{uuid.uuid4()}/x", data)
    assert err.value.code == "AccessDenied" and err.value.status == "403"
    signed = bucket.create_signed_url(key, 60)
    assert httpx.get(signed["signedURL"]).content == data
    removed = bucket.remove([key])
    assert [o["name"] for o in removed] == [key]
    with pytest.raises(StorageApiError) as err:
        bucket.download(key)
    assert err.value.code == "NoSuchKey" and err.value.status == "404"

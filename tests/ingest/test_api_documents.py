"""Documents API on the real app: upload, index by path, list/filter/paginate, chunks, content, delete."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.helpers.index_check import index_problems
from tests.ingest.harness import make_settings, running_app, upload, wait_idle, wait_job

pytestmark = pytest.mark.anyio

NOTES = b"# Databases\n\nPostgreSQL keeps rows in heap pages.\n\n## Indexes\n\nA B-tree index speeds up lookups.\n"


async def test_upload_is_streamed_copied_by_content_and_indexed(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    async with running_app(settings) as (client, services):
        r = await upload(client, "notes.md", NOTES, scope="project-x", tags="db, notes")
        assert r.status_code == 202, r.text
        body = r.json()
        doc, job_id = body["document"], body["job_id"]
        assert body["duplicate"] is False
        assert doc["status"] == "queued" and doc["scope"] == "project-x" and doc["tags"] == ["db", "notes"]
        digest = hashlib.sha256(NOTES).hexdigest()
        assert doc["sha256"] == digest and doc["size"] == len(NOTES) and doc["source"] == "upload"
        # the sidecar's own copy, named by content, not by the client's file name
        copy = settings.data_dir / "blobs" / digest[:2] / digest
        assert copy.read_bytes() == NOTES
        assert not list((settings.data_dir / "blobs" / "tmp").iterdir())

        job = await wait_job(client, job_id)
        assert job["state"] == "done" and job["document_id"] == doc["id"]
        got = (await client.get(f"/v1/documents/{doc['id']}")).json()
        assert got["status"] == "embedded" and got["title"] == "Databases" and got["mime"] == "text/markdown"
        assert got["chunk_count"] >= 1

        content = await client.get(f"/v1/documents/{doc['id']}/content")
        assert content.status_code == 200 and content.content == NOTES
        assert "notes.md" in content.headers["content-disposition"]

        chunks = (await client.get(f"/v1/documents/{doc['id']}/chunks")).json()
        assert chunks["total"] == got["chunk_count"] and chunks["next_offset"] is None
        text = NOTES.decode()
        for c in chunks["items"]:
            assert text[c["char_start"] : c["char_end"]] == c["text"]
        assert chunks["items"][0]["heading_path"][0] == "Databases"
        with services.store.read() as conn:
            assert index_problems(conn) == []


async def test_same_bytes_uploaded_again_return_the_existing_document(tmp_path: Path) -> None:
    async with running_app(make_settings(tmp_path / "data")) as (client, services):
        first = (await upload(client, "a.txt", b"retry me please, same bytes")).json()
        again = await upload(client, "renamed.txt", b"retry me please, same bytes")
        assert again.status_code == 200 and again.json()["duplicate"] is True
        assert again.json()["document"]["id"] == first["document"]["id"]
        other_scope = await upload(client, "a.txt", b"retry me please, same bytes", scope="elsewhere")
        assert other_scope.status_code == 202 and other_scope.json()["document"]["id"] != first["document"]["id"]
        await wait_idle(services)
        listed = (await client.get("/v1/documents")).json()["items"]
        assert len(listed) == 2
        # one stored copy serves both documents
        assert len(list((services.settings.data_dir / "blobs").glob("??/*"))) == 1


async def test_upload_refusals_are_4xx_and_store_nothing(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", max_upload_bytes=1000)
    async with running_app(settings) as (client, _):
        empty = await upload(client, "empty.txt", b"")
        assert empty.status_code == 422 and empty.json()["error"] == "validation_failed"
        assert "empty" in empty.json()["message"]
        big = await upload(client, "big.txt", b"x" * 5000)
        assert big.status_code == 413 and big.json()["error"] == "payload_too_large"
        no_file = await client.post("/v1/documents", data={"scope": "a"}, files={"other": ("x", b"y")})
        assert no_file.status_code == 422
        bad_scope = await upload(client, "ok.txt", b"fine text", scope="x" * 500)
        assert bad_scope.status_code == 422 and bad_scope.json()["detail"] == {"field": "scope"}
        not_multipart = await client.post("/v1/documents", content=b"raw", headers={"Content-Type": "text/plain"})
        assert not_multipart.status_code == 415
        assert (await client.get("/v1/documents")).json()["items"] == []
        assert list((settings.data_dir / "blobs").glob("??/*")) == []


@pytest.mark.parametrize(
    "name, stored",
    [
        ("../../../etc/passwd", "passwd"),
        ("..\\..\\windows\\system32\\config.txt", "config.txt"),
        ("/abs/path/evil.md", "evil.md"),
        ("CON.txt", "_CON.txt"),
        ("..", "file"),
    ],
)
async def test_path_traversal_file_names_are_sanitised(tmp_path: Path, name: str, stored: str) -> None:
    settings = make_settings(tmp_path / "data")
    async with running_app(settings) as (client, services):
        r = await upload(client, name, b"harmless text content")
        assert r.status_code == 202
        assert r.json()["document"]["filename"] == stored
        await wait_idle(services)
        content = await client.get(f"/v1/documents/{r.json()['document']['id']}/content")
        assert content.content == b"harmless text content"
    # nothing was written outside the data dir's blob store
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


async def test_index_by_path_references_the_file_in_place(tmp_path: Path) -> None:
    src = tmp_path / "docs" / "report.txt"
    src.parent.mkdir()
    src.write_text("Quarterly report. Revenue grew in every region.\n\nCosts stayed flat.")
    settings = make_settings(tmp_path / "data")
    async with running_app(settings) as (client, _):
        r = await client.post("/v1/documents", json={"path": str(src), "scope": "finance", "tags": ["q3"]})
        assert r.status_code == 202, r.text
        doc = r.json()["document"]
        assert doc["source"] == "path" and doc["path"] == str(src) and doc["tags"] == ["q3"]
        assert (await wait_job(client, r.json()["job_id"]))["state"] == "done"
        assert (await client.get(f"/v1/documents/{doc['id']}/content")).content == src.read_bytes()
        assert not (settings.data_dir / "blobs").exists() or not list((settings.data_dir / "blobs").glob("??/*"))
        # the same path again re-uses the document (new scope applies)
        again = await client.post("/v1/documents", json={"path": str(src), "scope": "other"})
        assert again.status_code == 202 and again.json()["document"]["id"] == doc["id"]
        assert again.json()["document"]["scope"] == "other"


async def test_index_by_path_refusals(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", max_upload_bytes=100)
    (tmp_path / "big.txt").write_bytes(b"y" * 500)
    (tmp_path / "dir").mkdir()
    async with running_app(settings) as (client, _):
        cases = {
            "relative/path.txt": (422, "absolute"),
            str(tmp_path / "missing.txt"): (404, "no such file"),
            str(tmp_path / "dir"): (422, "regular file"),
            str(tmp_path / "big.txt"): (422, "over the limit"),
            str(settings.data_dir / "docsidecar.db"): (422, "data dir"),
            str(tmp_path / "dir" / Path(*[".."] * 30) / "proc" / "self" / "environ"): (422, "virtual"),
            "/proc/self/environ": (422, "virtual"),
        }
        for path, (status, words) in cases.items():
            r = await client.post("/v1/documents", json={"path": path})
            assert r.status_code == status, (path, r.text)
            assert words in r.json()["message"], (path, r.json())
        assert (await client.post("/v1/documents", json={"path": "x", "bogus": 1})).status_code == 422
        assert (
            await client.post("/v1/documents", content=b"{not json", headers={"Content-Type": "application/json"})
        ).status_code == 400
        assert (await client.get("/v1/documents")).json()["items"] == []


async def test_list_filters_and_cursor_pagination(tmp_path: Path) -> None:
    async with running_app(make_settings(tmp_path / "data")) as (client, services):
        ids = []
        for i in range(7):
            scope = "even" if i % 2 == 0 else "odd"
            r = await upload(client, f"doc{i}.txt", f"document number {i} talks about topic {i}".encode(),
                             scope=scope, tags="t" if i < 3 else "u")  # fmt: skip
            ids.append(r.json()["document"]["id"])
        await wait_idle(services)
        seen, cursor = [], None
        while True:
            params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
            page = (await client.get("/v1/documents", params=params)).json()
            assert len(page["items"]) <= 3
            seen += [d["id"] for d in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == list(reversed(ids))  # newest first, each exactly once
        even = (await client.get("/v1/documents", params={"scope": "even"})).json()["items"]
        assert {d["id"] for d in even} == {ids[i] for i in (0, 2, 4, 6)}
        tagged = (await client.get("/v1/documents", params={"tag": "t", "scope": "odd"})).json()["items"]
        assert [d["id"] for d in tagged] == [ids[1]]
        embedded = (await client.get("/v1/documents", params={"status": "embedded", "source": "upload"})).json()
        assert len(embedded["items"]) == 7
        for bad in ({"status": "nope"}, {"source": "x"}, {"cursor": "!!!"}, {"limit": 0}, {"limit": 501}):
            r = await client.get("/v1/documents", params=bad)
            assert r.status_code in {400, 422}, (bad, r.text)
            assert r.json()["error"] in {"validation_failed", "bad_request"}


async def test_chunks_pagination_and_delete_removes_everything(tmp_path: Path) -> None:
    text = "\n\n".join(
        f"Paragraph {i}. " + "Lorem ipsum dolor sit amet, consectetur adipiscing. " * 12 for i in range(12)
    )
    async with running_app(make_settings(tmp_path / "data")) as (client, services):
        r = await upload(client, "long.txt", text.encode())
        doc_id = r.json()["document"]["id"]
        await wait_job(client, r.json()["job_id"])
        total = (await client.get(f"/v1/documents/{doc_id}")).json()["chunk_count"]
        assert total >= 4
        items, offset = [], 0
        while offset is not None:
            page = (await client.get(f"/v1/documents/{doc_id}/chunks", params={"offset": offset, "limit": 2})).json()
            items += page["items"]
            offset = page["next_offset"]
        assert [c["ordinal"] for c in items] == list(range(total))
        assert all(c["token_count"] <= 254 for c in items)
        digest = hashlib.sha256(text.encode()).hexdigest()

        deleted = await client.delete(f"/v1/documents/{doc_id}")
        assert deleted.status_code == 200 and deleted.json() == {"deleted": doc_id}
        assert (await client.get(f"/v1/documents/{doc_id}")).status_code == 404
        assert (await client.get(f"/v1/documents/{doc_id}/chunks")).status_code == 404
        assert (await client.get(f"/v1/documents/{doc_id}/content")).status_code == 404
        assert (await client.delete(f"/v1/documents/{doc_id}")).status_code == 404
        with services.store.read() as conn:
            for table in ("chunks", "embeddings", "vec_chunks_1", "chunks_fts_docsize"):
                assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0, table
            assert index_problems(conn) == []
            assert conn.execute("SELECT op FROM outbox WHERE entity_id = ?", (doc_id,)).fetchone()[0] == "delete"
        assert not (services.settings.data_dir / "blobs" / digest[:2] / digest).exists()

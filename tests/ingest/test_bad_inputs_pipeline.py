"""Hostile and broken files through the whole pipeline (upload → job → document status): each is a
recorded, explained outcome, and the good documents next to them are indexed as usual.

The extractor-level behaviour of each input is in test_bad_inputs.py; synchronous refusals
(empty upload, size limit, bad paths, traversal names) are in test_api_documents.py.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pytest

from tests.helpers.index_check import index_problems
from tests.ingest.fixtures import CONTENT_TYPES, encrypt_pdf, make_docx, make_pdf
from tests.ingest.harness import make_settings, running_app, upload, wait_for, wait_idle

pytestmark = pytest.mark.anyio


def zip_bomb() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("[Content_Types].xml", CONTENT_TYPES)
        with zf.open("word/document.xml", "w", force_zip64=True) as out:
            for _ in range(64):
                out.write(b"A" * (1024 * 1024))
    return buffer.getvalue()


def bad_files() -> dict[str, tuple[bytes, str, str]]:
    """name → (bytes, expected status, words the reason must contain)."""
    docx = make_docx([("paragraph text " * 50, None)] * 20)
    return {
        "photo.pdf": (os.urandom(4096), "unsupported", "not a PDF"),
        "secret.pdf": (encrypt_pdf(make_pdf([["top secret"]]), user_password="pw"), "failed", "encrypted PDF"),
        "scan.pdf": (make_pdf([[], []]), "no_text", "no text layer"),
        "cut.docx": (docx[: len(docx) // 2], "failed", "docx"),
        "bomb.docx": (zip_bomb(), "failed", "zip bomb guard"),
        "blank.txt": (b" \n\t \n", "no_text", "whitespace"),
        "binary.txt": (bytes(range(256)) * 64, "unsupported", "binary data"),
        "program.exe": (b"MZ\x90\x00" + os.urandom(2000), "unsupported", ""),
    }


async def test_bad_files_are_recorded_with_reasons_and_the_rest_is_indexed(tmp_path: Path) -> None:
    async with running_app(make_settings(tmp_path / "data")) as (client, services):
        ids = {}
        for name, (data, _, _) in bad_files().items():
            r = await upload(client, name, data)
            assert r.status_code == 202, (name, r.text)
            ids[name] = r.json()["document"]["id"]
        mixed = "héllo wörld ".encode() * 10 + b"\xff\xfe\xc3(" + b" more text"
        ids["mixed.txt"] = (await upload(client, "mixed.txt", mixed)).json()["document"]["id"]
        good = (await upload(client, "good.md", b"# Fine\n\nA perfectly normal document.")).json()["document"]["id"]
        await wait_idle(services)
        for name, (_, status, words) in bad_files().items():
            doc = (await client.get(f"/v1/documents/{ids[name]}")).json()
            assert doc["status"] == status, (name, doc)
            assert doc["status_reason"] and words in doc["status_reason"], (name, doc["status_reason"])
            assert doc["chunk_count"] == 0
        mixed_doc = (await client.get(f"/v1/documents/{ids['mixed.txt']}")).json()
        assert mixed_doc["status"] == "embedded" and "invalid UTF-8" in mixed_doc["status_reason"]
        chunk = (await client.get(f"/v1/documents/{ids['mixed.txt']}/chunks")).json()["items"][0]
        assert "héllo wörld" in chunk["text"] and "\ufffd" in chunk["text"]
        assert (await client.get(f"/v1/documents/{good}")).json()["status"] == "embedded"
        jobs = (await client.get("/v1/jobs", params={"limit": 50})).json()["items"]
        assert {j["state"] for j in jobs} == {"done"}, "a bad file must not fail its job or stop the queue"
        cov = (await client.get("/v1/coverage")).json()["scopes"][0]
        assert (cov["total"], cov["indexed"], cov["skipped"], cov["failed"]) == (10, 2, 5, 3)
        assert "no text (scanned PDF or empty file) (2)" in cov["summary"]
        with services.store.read() as conn:
            assert index_problems(conn) == []


async def test_five_megabyte_single_line_is_indexed_within_the_model_limit(tmp_path: Path) -> None:
    line = b"word " * 1_000_000  # 5 MB, one line; identical chunks are embedded once
    async with running_app(make_settings(tmp_path / "data")) as (client, services):
        r = (await upload(client, "line.txt", line)).json()
        good = (await upload(client, "good.txt", b"a normal little file")).json()
        await wait_idle(services, timeout=240)
        doc = (await client.get(f"/v1/documents/{r['document']['id']}")).json()
        assert doc["status"] == "embedded" and doc["chunk_count"] > 4000
        stats = (await client.get("/v1/ingest")).json()["stats"]
        assert stats["chunks_embedded"] <= 5 and stats["chunks_reused"] >= doc["chunk_count"] - 4
        with services.store.read() as conn:
            rows = conn.execute(
                "SELECT char_start, char_end, token_count, length(text) FROM chunks WHERE document_id = ?",
                (doc["id"],),
            ).fetchall()
            assert index_problems(conn) == []
        assert all(tokens <= 254 and end - start == size for start, end, tokens, size in rows)
        assert all(start % 5 == 0 for start, _, _, _ in rows), "a cut inside a word"
        assert (await client.get(f"/v1/documents/{good['document']['id']}")).json()["status"] == "embedded"


async def test_file_deleted_between_event_and_read(tmp_path: Path) -> None:
    watched = (tmp_path / "w").resolve()
    watched.mkdir()
    lone = tmp_path / "lone.txt"
    lone.write_text("indexed by path, then deleted before its job ran")
    async with running_app(make_settings(tmp_path / "data")) as (client, services):
        folder_id = (await client.post("/v1/folders", json={"path": str(watched)})).json()["id"]
        await client.post("/v1/ingest/pause")
        (watched / "brief.txt").write_text("this file lives for a moment only")
        (watched / "stays.txt").write_text("this one stays")

        async def registered() -> bool:
            items = (await client.get("/v1/documents", params={"folder_id": folder_id})).json()["items"]
            return len(items) == 2

        await wait_for(registered, 30, "the watcher to register both files")
        by_path = await client.post("/v1/documents", json={"path": str(lone)})
        lone.unlink()
        (watched / "brief.txt").unlink()
        await client.post("/v1/ingest/resume")
        await wait_idle(services)

        async def brief_removed() -> bool:
            items = (await client.get("/v1/documents", params={"folder_id": folder_id})).json()["items"]
            return [d["filename"] for d in items] == ["stays.txt"]

        await wait_for(brief_removed, 30, "the vanished watched file's document to go")
        lone_doc = (await client.get(f"/v1/documents/{by_path.json()['document']['id']}")).json()
        assert lone_doc["status"] == "failed" and lone_doc["status_reason"] == "file not found (moved or deleted?)"
        stays = (await client.get("/v1/documents", params={"folder_id": folder_id})).json()["items"][0]
        assert stays["status"] == "embedded"
        jobs = (await client.get("/v1/jobs")).json()["items"]
        # the vanished watched file's job was cancelled with its document (or ran and found it gone)
        assert sorted(j["state"] for j in jobs) in (["cancelled", "done", "done"], ["done", "done", "done"]), jobs
        assert all(j["document_id"] is None for j in jobs if j["state"] == "cancelled")

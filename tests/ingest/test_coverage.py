"""``GET /v1/coverage``: per folder and per scope, indexed / pending / skipped / failed with reasons.
A file without extracted text is never counted as indexed; without the model, documents are
keyword-searchable but pending until their vectors exist."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from backend.resources import default_models_dir
from tests.helpers.index_check import index_problems
from tests.ingest.fixtures import encrypt_pdf, make_pdf
from tests.ingest.harness import make_settings, running_app, upload, wait_for, wait_idle

pytestmark = pytest.mark.anyio


async def test_coverage_per_folder_and_scope(tmp_path: Path) -> None:
    watched = (tmp_path / "scans").resolve()
    watched.mkdir()
    (watched / "letter.txt").write_text("Dear customer, your order shipped.")
    (watched / "scan1.pdf").write_bytes(make_pdf([[], []]))
    (watched / "scan2.pdf").write_bytes(make_pdf([[]]))
    (watched / "empty.md").write_bytes(b"")
    (watched / "blank.html").write_bytes(b"<html><body><script>x()</script></body></html>")
    async with running_app(make_settings(tmp_path / "data")) as (client, services):
        folder = (await client.post("/v1/folders", json={"path": str(watched), "scope": "office"})).json()
        await upload(client, "memo.txt", b"A memo for the team.", scope="team")
        await upload(client, "locked.pdf", encrypt_pdf(make_pdf([["x"]]), user_password="pw"), scope="team")
        await upload(client, "image.pdf", b"\x89PNG\r\n\x1a\n" + b"\0" * 64, scope="team")

        async def settled() -> bool:
            with services.store.read() as conn:
                n = conn.execute("SELECT count(*) FROM documents").fetchone()[0]
            return n == 8

        await wait_for(settled, 30, "8 documents")
        await wait_idle(services)
        await client.post("/v1/ingest/pause")
        await upload(client, "later.txt", b"queued while paused", scope="team")
        cov = (await client.get("/v1/coverage")).json()

    by_folder = {f["folder_id"]: f for f in cov["folders"]}
    office = by_folder[folder["id"]]
    assert office["path"] == str(watched)
    assert (office["total"], office["indexed"], office["skipped"], office["failed"], office["pending"]) == (
        5,
        1,
        4,
        0,
        0,
    )
    assert office["skipped_reasons"] == {"no text (scanned PDF or empty file)": 4}
    assert office["summary"] == "1/5 indexed, 4 skipped: no text (scanned PDF or empty file) (4)"
    loose = by_folder[None]  # uploads belong to no folder
    assert (loose["total"], loose["indexed"], loose["pending"]) == (4, 1, 1)
    scopes = {s["scope"]: s for s in cov["scopes"]}
    assert set(scopes) == {"office", "team"}
    team = scopes["team"]
    assert (team["total"], team["indexed"], team["pending"], team["skipped"], team["failed"]) == (4, 1, 1, 1, 1)
    assert team["failed_reasons"] == {"encrypted PDF (a password is required)": 1}
    assert team["skipped_reasons"] == {"images (no OCR) are not supported": 1}
    assert team["summary"].startswith("1/4 indexed, 1 pending, 1 skipped: images (no OCR) are not supported (1)")


async def test_without_the_model_documents_are_keyword_only_and_pending_then_embedded(tmp_path: Path) -> None:
    data = tmp_path / "data"
    # a models dir whose ONNX file is missing (a damaged install): the tokenizer still works
    real = default_models_dir()
    broken = tmp_path / "models"
    (broken / "all-MiniLM-L6-v2-int8").mkdir(parents=True)
    shutil.copy(real / "all-MiniLM-L6-v2-int8.toml", broken)
    shutil.copy(real / "all-MiniLM-L6-v2-int8" / "tokenizer.json", broken / "all-MiniLM-L6-v2-int8")
    async with running_app(make_settings(data, models_dir=broken)) as (client, services):
        r = (await upload(client, "notes.txt", b"Checkpoints flush dirty pages to disk.")).json()

        async def chunked() -> bool:
            doc = (await client.get(f"/v1/documents/{r['document']['id']}")).json()
            return doc["status"] == "chunked"

        await wait_for(chunked, 30, "keyword-only indexing")
        doc = (await client.get(f"/v1/documents/{r['document']['id']}")).json()
        assert "waiting for the embedding model" in doc["status_reason"] and doc["chunk_count"] == 1
        cov = (await client.get("/v1/coverage")).json()["scopes"][0]
        assert (cov["indexed"], cov["pending"]) == (0, 1)
        with services.store.read() as conn:
            hits = conn.execute("SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH 'checkpoints'").fetchall()
            assert len(hits) == 1
            assert conn.execute("SELECT count(*) FROM embeddings").fetchone()[0] == 0
            assert conn.execute("SELECT state FROM jobs WHERE kind = 'embed_missing'").fetchone()[0] == "queued"
    # the model is back: the embed_missing job fills the vectors in
    async with running_app(make_settings(data)) as (client, services):
        await wait_idle(services)
        doc = (await client.get(f"/v1/documents/{r['document']['id']}")).json()
        assert doc["status"] == "embedded" and doc["status_reason"] is None
        with services.store.read() as conn:
            assert conn.execute("SELECT count(*) FROM embeddings").fetchone()[0] == 1
            assert index_problems(conn) == []
        assert (await client.get("/v1/coverage")).json()["scopes"][0]["summary"] == "1/1 indexed"

"""A corrupted model file is detected at start-up, reported in /v1/status, never used — and
keyword search keeps working without it."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from backend.app import create_app
from backend.services import Services
from backend.settings import Settings
from tests.conftest import TEST_PORT, TEST_TOKEN
from tests.embed.conftest import ModelFiles

pytestmark = pytest.mark.anyio


def corrupted_models(model_files: ModelFiles, dest: Path) -> Path:
    dest.mkdir()
    shutil.copy(model_files.models_dir / f"{model_files.manifest.id}.toml", dest)
    model_dir = dest / model_files.manifest.id
    model_dir.mkdir()
    for name in ("model.onnx", "tokenizer.json"):
        shutil.copy(model_files.model_dir / name, model_dir / name)
    onnx = model_dir / "model.onnx"
    data = bytearray(onnx.read_bytes())
    data[len(data) // 3] ^= 0x40  # one bit: same size, different hash
    onnx.write_bytes(data)
    return dest


async def wait_for(pred, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await pred():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def test_corrupt_model_is_reported_and_keyword_search_still_works(
    model_files: ModelFiles, tmp_path: Path
) -> None:
    models = corrupted_models(model_files, tmp_path / "models")
    settings = Settings.load({}, {"data_dir": tmp_path / "data", "models_dir": models})
    services = Services(settings)
    app = create_app(settings, services, port=TEST_PORT, token=TEST_TOKEN)
    async with AsyncTestClient(app, base_url=f"http://127.0.0.1:{TEST_PORT}", raise_server_exceptions=False) as c:
        c.headers["Authorization"] = f"Bearer {TEST_TOKEN}"

        async def embedding_settled() -> bool:
            state = (await c.get("/v1/status")).json()["components"]["embedding"]["state"]
            return bool(state != "starting")

        await wait_for(embedding_settled)
        status = (await c.get("/v1/status")).json()
        emb = status["components"]["embedding"]
        assert emb["state"] == "failed"
        assert emb["error"]["error"] == "model_corrupt"
        assert "sha256" in emb["error"]["message"] and "model.onnx" in emb["error"]["message"]
        assert "docsidecar models fetch" in emb["error"]["message"]
        assert emb["error"]["detail"]["expected_sha256"] == model_files.manifest.onnx_file.sha256
        assert status["components"]["store"]["state"] == "ready"
        assert status["components"]["ingest"]["state"] == "ready"

        doc_path = tmp_path / "notes.txt"
        doc_path.write_text("The checkpointer flushes dirty buffers to disk at intervals.\n" * 3)
        r = await c.post("/v1/documents", json={"path": str(doc_path)})
        assert r.status_code == 202, r.text
        doc_id, job_id = r.json()["document"]["id"], r.json()["job_id"]

        async def job_done() -> bool:  # the ingest job ends; its last step commits the chunks
            return bool((await c.get(f"/v1/jobs/{job_id}")).json()["state"] == "done")

        await wait_for(job_done)
        doc = (await c.get(f"/v1/documents/{doc_id}")).json()
        assert doc["status"] == "chunked"
        assert "waiting for the embedding model" in (doc["status_reason"] or "")
        # keyword search reads the FTS5 index, which needs no model
        with services.store.read() as conn:
            hits = conn.execute(
                "SELECT c.document_id FROM chunks_fts f JOIN chunks c ON c.id = f.rowid WHERE chunks_fts MATCH ?",
                ("checkpointer",),
            ).fetchall()
            vectors = conn.execute("SELECT count(*) FROM embeddings").fetchone()[0]
        assert hits and {h[0] for h in hits} == {doc_id}
        assert vectors == 0, "the corrupted model was never used"
        assert (await c.get("/v1/health")).status_code == 200

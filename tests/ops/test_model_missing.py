"""The model files are deleted after documents were indexed (what tests/embed and
tests/search prove in-process for a missing or corrupt ONNX file, here with *every* model file
gone, through a real ``serve`` process): /v1/status says why and how to fix it, keyword search
and degraded hybrid search keep answering, a new document waits for the tokenizer instead of
failing, and once the files are back it is indexed without anyone re-adding it."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import httpx

from backend.resources import default_models_dir
from tests.helpers.process import SidecarProcess, start_sidecar
from tests.search.indexed import IndexedCorpus

MODEL = "all-MiniLM-L6-v2-int8"


def models_with_files_deleted(root: Path) -> Path:
    """What a user who deleted the model's folder has: the manifest, no model files."""
    root.mkdir()
    shutil.copy(default_models_dir() / f"{MODEL}.toml", root / f"{MODEL}.toml")
    return root


def wait_for(pred: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def embedding_settled(c: httpx.Client) -> dict[str, Any] | None:
    comp: dict[str, Any] = c.get("/v1/status").json()["components"]["embedding"]
    return comp if comp["state"] not in {"starting", "idle"} else None


def test_keyword_search_and_status_without_any_model_file(corpus: IndexedCorpus, tmp_path: Path) -> None:
    models = models_with_files_deleted(tmp_path / "models")
    new_doc = tmp_path / "notes.txt"
    new_doc.write_text("The checkpointer flushes dirty buffers to disk at intervals.\n" * 20)
    proc: SidecarProcess = start_sidecar(corpus.data_dir, "--models-dir", str(models))
    try:
        with proc.client() as c:
            emb = wait_for(lambda: embedding_settled(c), 60, "the model load to give up")
            assert emb["state"] == "failed" and emb["error"]["error"] == "model_missing", emb
            assert "docsidecar models fetch" in emb["error"]["message"]
            components = c.get("/v1/status").json()["components"]
            assert components["store"]["state"] == "ready" and components["ingest"]["state"] == "ready"

            wal = corpus.documents["wal-intro.html"]
            r = c.post("/v1/search", json={"query": "write-ahead log", "mode": "keyword", "k": 3})
            assert r.status_code == 200 and r.json()["hits"][0]["document_id"] == wal
            r = c.post("/v1/search", json={"query": "write-ahead log", "mode": "hybrid", "k": 3})
            body = r.json()
            assert r.status_code == 200 and body["retrievers"] == ["keyword"] and body["hits"][0]["document_id"] == wal
            assert any("semantic retrieval unavailable" in w for w in body["warnings"])
            r = c.post("/v1/search", json={"query": "write-ahead log", "mode": "semantic", "k": 3})
            assert r.status_code == 503 and r.json()["error"] == "model_missing"

            added = c.post("/v1/documents", json={"path": str(new_doc)}).json()

            def waiting() -> dict[str, Any] | None:
                job: dict[str, Any] = c.get(f"/v1/jobs/{added['job_id']}").json()
                return job if job["error"] and "tokenizer" in job["error"] else None

            job = wait_for(waiting, 60, "the new document to wait for the tokenizer")
            assert job["state"] == "queued" and job["attempts"] == 0  # waiting, not failing
            assert "docsidecar models fetch" in job["error"]
    finally:
        assert proc.stop() == 0
    # `docsidecar models fetch` puts the files back; the next start indexes the waiting document
    proc = start_sidecar(corpus.data_dir)
    try:
        with proc.client() as c:
            doc_id = added["document"]["id"]
            wait_for(lambda: c.get(f"/v1/documents/{doc_id}").json()["status"] == "embedded", 120, "the document")
            r = c.post("/v1/search", json={"query": "checkpointer dirty buffers", "mode": "semantic", "k": 1})
            assert r.status_code == 200 and r.json()["hits"][0]["document_id"] == doc_id
    finally:
        assert proc.stop() == 0

"""Keyword search keeps working while the embedding model is missing (or still loading):
hybrid answers from keyword retrieval and says so; semantic reports the model's error."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from backend.app import create_app
from backend.resources import default_models_dir
from backend.services import Services
from backend.settings import Settings
from tests.conftest import TEST_PORT, TEST_TOKEN
from tests.search.indexed import build

pytestmark = pytest.mark.anyio
MODEL = "all-MiniLM-L6-v2-int8"


def models_without_onnx(root: Path) -> Path:
    """A models dir with the manifest and tokenizer but no ONNX file (chunking still works)."""
    src = default_models_dir()
    (root / MODEL).mkdir(parents=True)
    shutil.copy(src / f"{MODEL}.toml", root / f"{MODEL}.toml")
    shutil.copy(src / MODEL / "tokenizer.json", root / MODEL / "tokenizer.json")
    return root


async def test_keyword_and_degraded_hybrid_without_the_model(tmp_path: Path) -> None:
    models = models_without_onnx(tmp_path / "models")
    corpus = build(
        tmp_path / "data", {"wal-intro.html": ("manual", ()), "backup-dump.html": ("manual", ())}, models_dir=models
    )
    settings = Settings.load({}, {"data_dir": corpus.data_dir, "models_dir": models})
    services = Services(settings)
    app = create_app(settings, services, port=TEST_PORT, token=TEST_TOKEN)
    async with AsyncTestClient(app, base_url=f"http://127.0.0.1:{TEST_PORT}", raise_server_exceptions=False) as c:
        c.headers["Authorization"] = f"Bearer {TEST_TOKEN}"
        assert not services.embedding.wait_ready(30)
        r = await c.post("/v1/search", json={"query": "write-ahead log", "mode": "keyword", "k": 3})
        assert r.status_code == 200 and r.json()["hits"][0]["document_id"] == corpus.documents["wal-intro.html"]
        r = await c.post("/v1/search", json={"query": "write-ahead log", "mode": "hybrid", "k": 3})
        body = r.json()
        assert r.status_code == 200 and body["retrievers"] == ["keyword"]
        assert body["hits"][0]["document_id"] == corpus.documents["wal-intro.html"]
        assert any("semantic retrieval unavailable" in w for w in body["warnings"])
        r = await c.post("/v1/search", json={"query": "write-ahead log", "mode": "semantic", "k": 3})
        assert r.status_code == 503 and r.json()["error"].startswith("model_")
        r = await c.post("/v1/context", json={"question": "what is the write-ahead log", "token_budget": 200})
        assert r.status_code == 200 and r.json()["citations"]

"""EmbeddingService lifecycle: background load, failure states, status, stop leaves nothing."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from backend.components import ComponentState
from backend.embed.errors import ModelCorrupt, ModelMissing, ModelNotReady, ModelUnknown
from backend.embed.service import EmbedConfig, EmbeddingService
from tests.embed.conftest import ModelFiles


def loader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("embed-loader")]


def test_loads_in_the_background_and_stops_cleanly(model_files: ModelFiles) -> None:
    svc = EmbeddingService(EmbedConfig(models_dir=model_files.models_dir, threads=1))
    assert svc.state == "idle"
    with pytest.raises(ModelNotReady):
        svc.embedder  # noqa: B018
    svc.start()
    assert svc._thread is not None and svc._thread.name == "embed-loader:all-MiniLM-L6-v2-int8"
    assert svc.wait_ready(60)
    emb = svc.embedder
    assert emb.embed(["hello"]).shape == (1, 384)
    status = svc.summary()
    assert status["state"] == "ready" and status["dim"] == 384 and status["threads"] == 1
    assert status["error"] is None and status["load_seconds"] > 0
    cell = svc.status.get()  # what /v1/status shows (backend.components.StatusCell)
    assert cell.state is ComponentState.READY and cell.detail is not None
    assert cell.detail["model_id"] == "all-MiniLM-L6-v2-int8" and cell.detail["dim"] == 384
    assert svc.name == "embedding"
    svc.stop()
    assert svc.state == "stopped" and loader_threads() == []
    assert svc.status.get().state is ComponentState.STOPPED
    with pytest.raises(ModelNotReady):
        svc.embedder  # noqa: B018
    with pytest.raises(ModelNotReady):
        emb.embed(["after stop"])  # an embedder handed out earlier refuses too
    svc.stop()  # idempotent


def _models_without_files(model_files: ModelFiles, tmp_path: Path) -> Path:
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(model_files.models_dir / f"{model_files.manifest.id}.toml", models)
    return models


def test_missing_model_fails_with_a_clear_status(model_files: ModelFiles, tmp_path: Path) -> None:
    svc = EmbeddingService(EmbedConfig(models_dir=_models_without_files(model_files, tmp_path)))
    svc.start()
    assert not svc.wait_ready(60)
    assert svc.state == "failed" and isinstance(svc.error, ModelMissing)
    with pytest.raises(ModelMissing, match="docsidecar models fetch"):
        svc.embedder  # noqa: B018
    body = svc.summary()["error"]
    assert body["error"] == "model_missing" and "tokenizer.json" in body["message"]
    cell = svc.status.get()
    assert cell.state is ComponentState.FAILED and cell.error == body
    svc.stop()
    assert loader_threads() == []


def test_corrupt_model_fails(model_files: ModelFiles, tmp_path: Path) -> None:
    models = _models_without_files(model_files, tmp_path)
    shutil.copytree(model_files.model_dir, models / model_files.manifest.id)
    onnx = models / model_files.manifest.id / "model.onnx"
    data = bytearray(onnx.read_bytes())
    data[-10] ^= 0x80
    onnx.write_bytes(data)
    svc = EmbeddingService(EmbedConfig(models_dir=models))
    svc.start()
    assert not svc.wait_ready(60)
    assert isinstance(svc.error, ModelCorrupt)
    assert svc.summary()["error"]["error"] == "model_corrupt"
    svc.stop()


def test_unknown_model_id(model_files: ModelFiles) -> None:
    svc = EmbeddingService(EmbedConfig(models_dir=model_files.models_dir, model_id="nope"))
    svc.start()
    assert not svc.wait_ready(60)
    assert isinstance(svc.error, ModelUnknown)
    svc.stop()


def test_start_twice_is_refused(model_files: ModelFiles) -> None:
    svc = EmbeddingService(EmbedConfig(models_dir=model_files.models_dir, threads=1))
    svc.start()
    with pytest.raises(RuntimeError):
        svc.start()
    svc.stop()
    assert svc.state == "stopped"


def test_stop_before_start_and_config_passthrough(model_files: ModelFiles) -> None:
    svc = EmbeddingService(
        EmbedConfig(models_dir=model_files.models_dir, threads=1, token_budget=100, query_cache_size=0)
    )
    svc.stop()
    assert svc.state == "stopped"
    svc2 = EmbeddingService(EmbedConfig(models_dir=model_files.models_dir, threads=1, token_budget=100))
    svc2.start()
    assert svc2.wait_ready(60)
    assert svc2.embedder.token_budget == 100
    v = svc2.embedder.embed_query("q")
    assert np.isfinite(v).all()
    svc2.stop()


def test_stop_while_loading_ends_the_load_and_leaves_no_thread(model_files: ModelFiles) -> None:
    svc = EmbeddingService(EmbedConfig(models_dir=model_files.models_dir, threads=1))
    svc.start()
    svc.stop()  # right away: the loader stops at its next step (or had already finished)
    assert svc.state == "stopped" and loader_threads() == []
    assert svc.status.get().state is ComponentState.STOPPED
    with pytest.raises(ModelNotReady):
        svc.embedder  # noqa: B018

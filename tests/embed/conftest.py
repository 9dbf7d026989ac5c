"""Fixtures for tests that need the real model.

``model_files`` fetches the default model into the repository's ``models/`` directory (a no-op
when ``make test`` / ``docsidecar models fetch`` already did: fetching is idempotent and only
re-hashes the files). Move it to the top-level ``tests/conftest.py`` to share it with other
test packages.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from backend.embed.fetch import fetch_model
from backend.embed.manifest import DEFAULT_MODEL_ID, ModelManifest, find_manifest
from backend.embed.onnx_embedder import OnnxEmbedder

REPO_MODELS_DIR = Path(__file__).resolve().parents[2] / "models"


@dataclass(frozen=True)
class ModelFiles:
    manifest: ModelManifest
    models_dir: Path
    model_dir: Path


@pytest.fixture(scope="session")
def model_files() -> ModelFiles:
    """The default model's manifest and verified files (fetched once if absent)."""
    manifest = find_manifest(REPO_MODELS_DIR, DEFAULT_MODEL_ID)
    model_dir = fetch_model(manifest, REPO_MODELS_DIR)
    return ModelFiles(manifest, REPO_MODELS_DIR, model_dir)


@pytest.fixture(scope="session")
def onnx_embedder(model_files: ModelFiles) -> Iterator[OnnxEmbedder]:
    """One loaded embedder shared by the session (loading takes ~0.5 s)."""
    emb = OnnxEmbedder.load(model_files.manifest, model_files.model_dir, threads=2)
    yield emb
    emb.close()

"""Fixtures for the search tests: a real store in a temp dir, started and stopped."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from backend.embed.manifest import DEFAULT_MODEL_ID, find_manifest
from backend.embed.onnx_embedder import OnnxEmbedder
from backend.resources import default_models_dir
from backend.store import Store
from tests.search.indexed import IndexedCorpus, build


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "data")
    s.start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="session")
def embedder() -> OnnxEmbedder:
    """The real int8 MiniLM model (``make models`` fetches it)."""
    models = default_models_dir()
    manifest = find_manifest(models, DEFAULT_MODEL_ID)
    return OnnxEmbedder.load(manifest, manifest.dir_in(models), threads=1)


@pytest.fixture(scope="session")
def indexed_template(tmp_path_factory: pytest.TempPathFactory) -> IndexedCorpus:
    """The PostgreSQL pages of :mod:`tests.search.indexed`, indexed once per session."""
    return build(tmp_path_factory.mktemp("indexed") / "data")

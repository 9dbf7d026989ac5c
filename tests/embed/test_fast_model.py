"""The opt-in fast model ``all-MiniLM-L6-v2-int8-dynamic``: built at fetch time, pinned, faithful.

Its ``model.onnx`` is derived from the default model's verified graph by
:mod:`backend.embed.derive` (dynamic int8 quantisation, per output channel). These tests run the
real recipe and the real derived graph: the build reproduces the pinned sha256, vectors keep the
fidelity the manifest promises against the fp32 reference, and a text's vector never depends on
the texts embedded with it (dynamic activation scales span a whole run, so the manifest caps
runs at one sequence).
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest

from backend.embed.derive import derive_file
from backend.embed.errors import ModelFetchFailed
from backend.embed.fetch import _derive_verified
from backend.embed.manifest import ModelManifest, find_manifest
from backend.embed.onnx_embedder import OnnxEmbedder
from backend.embed.verify import sha256_file
from tests.embed.conftest import REPO_MODELS_DIR, ModelFiles
from tests.embed.helpers import load_golden, one_by_one, variant

FAST_ID = "all-MiniLM-L6-v2-int8-dynamic"
GOLDEN = load_golden()
REF = np.asarray(GOLDEN["vectors"], dtype=np.float32)


@pytest.fixture(scope="module")
def fast_manifest() -> ModelManifest:
    return find_manifest(REPO_MODELS_DIR, FAST_ID)


@pytest.fixture(scope="module")
def fast_embedder(fast_manifest: ModelManifest) -> Iterator[OnnxEmbedder]:
    from backend.embed.fetch import fetch_model

    model_dir = fetch_model(fast_manifest, REPO_MODELS_DIR)  # a no-op after `make models`
    emb = OnnxEmbedder.load(fast_manifest, model_dir, threads=2)
    yield emb
    emb.close()


def test_recipe_rebuilds_the_pinned_file(model_files: ModelFiles, fast_manifest: ModelManifest, tmp_path: Path) -> None:
    source = model_files.model_dir / model_files.manifest.onnx_file.path
    assert sha256_file(source) == fast_manifest.onnx_file.source_spec().sha256
    built = tmp_path / "model.onnx"
    derive_file("onnx-dynamic-int8", source, built, tmp_path)
    assert sha256_file(built) == fast_manifest.onnx_file.sha256
    assert built.stat().st_size == fast_manifest.onnx_file.size


def test_a_build_that_differs_from_the_pin_is_refused(model_files: ModelFiles, tmp_path: Path) -> None:
    spec = find_manifest(REPO_MODELS_DIR, FAST_ID).onnx_file
    wrong = type(spec)(spec.path, "0" * 64, spec.size, spec.package, spec.member, None, "onnx", spec.derive)
    source = tmp_path / "source.onnx"
    source.write_bytes((model_files.model_dir / "model.onnx").read_bytes())
    with pytest.raises(ModelFetchFailed, match=r"pins size .* sha256 0{64}.*tool versions"):
        _derive_verified(wrong, source, tmp_path / "out" / "model.onnx", tmp_path)


def test_vectors_keep_the_promised_fidelity(fast_embedder: OnnxEmbedder, fast_manifest: ModelManifest) -> None:
    vecs = fast_embedder.embed(GOLDEN["sentences"])
    cos = (vecs * REF).sum(axis=1)
    assert fast_manifest.reference_min_cosine == 0.975
    assert (cos >= fast_manifest.reference_min_cosine).all(), cos
    assert float(np.median(cos)) >= 0.99, cos  # ordinary sentences sit at 0.993-0.996
    sim = vecs[:6] @ vecs[:6].T
    pairs = {tuple(p) for p in GOLDEN["paraphrases"]}
    unrelated = [sim[i, j] for i, j in combinations(range(6), 2) if (i, j) not in pairs]
    for i, j in pairs:
        assert sim[i, j] > max(unrelated), (i, j)


def test_a_vector_does_not_depend_on_its_batch_mates(fast_embedder: OnnxEmbedder) -> None:
    texts = [s for s in GOLDEN["sentences"] if s] + ["vacuum", "index " * 40]
    assert fast_embedder.max_batch_size == 1  # from the manifest's [onnx] max_batch_size
    np.testing.assert_allclose(fast_embedder.embed(texts), one_by_one(fast_embedder, texts), atol=1e-6)
    # Why the cap exists: batched runs of this graph move vectors (shared activation scales).
    batched = variant(fast_embedder, max_batch_size=16).embed(texts)
    assert np.abs(batched - one_by_one(fast_embedder, texts)).max() > 1e-3

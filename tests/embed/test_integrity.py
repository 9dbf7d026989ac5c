"""A corrupted, truncated or missing model file is detected and reported, never used."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from backend.embed.errors import ModelCorrupt, ModelMissing
from backend.embed.onnx_embedder import OnnxEmbedder
from backend.embed.tokenizer import load_tokenizer
from backend.embed.verify import read_verified, verify_model_dir
from backend.errors import Unavailable
from tests.embed.conftest import ModelFiles


@pytest.fixture
def model_copy(model_files: ModelFiles, tmp_path: Path) -> ModelFiles:
    """A private copy of the verified model (tests damage it)."""
    models = tmp_path / "models"
    shutil.copytree(model_files.model_dir, models / model_files.manifest.id)
    shutil.copy(model_files.manifest.source or "", models)  # type: ignore[arg-type]
    return ModelFiles(model_files.manifest, models, models / model_files.manifest.id)


def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(data)


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-1])


def remove(path: Path) -> None:
    path.unlink()


DAMAGE: list[tuple[str, Callable[[Path], None], type[Unavailable], str]] = [
    ("flipped", lambda p: flip_byte(p, p.stat().st_size // 2), ModelCorrupt, "sha256"),
    ("truncated", truncate, ModelCorrupt, "bytes, expected"),
    ("missing", remove, ModelMissing, "is missing"),
]


@pytest.mark.parametrize("file", ["model.onnx", "tokenizer.json"])
@pytest.mark.parametrize(("kind", "damage", "error", "needle"), DAMAGE, ids=[d[0] for d in DAMAGE])
def test_damage_is_detected_and_named(
    model_copy: ModelFiles,
    file: str,
    kind: str,
    damage: Callable[[Path], None],
    error: type[Unavailable],
    needle: str,
) -> None:
    m, d = model_copy.manifest, model_copy.model_dir
    verify_model_dir(m, d)
    damage(d / file)
    for attempt in (
        lambda: verify_model_dir(m, d),
        lambda: OnnxEmbedder.load(m, d, threads=1),  # never silently used
    ):
        with pytest.raises(error) as info:
            attempt()
        exc = info.value
        assert exc.status == 503 and exc.code == error.code
        assert str(d / file) in exc.message and needle in exc.message
        assert "docsidecar models fetch --model all-MiniLM-L6-v2-int8" in exc.message
        spec = m.onnx_file if file == "model.onnx" else m.tokenizer_file
        assert exc.detail["expected_sha256"] == spec.sha256
        assert exc.detail["expected_size"] == spec.size
        if kind == "flipped":
            assert exc.detail["actual_sha256"] not in (None, spec.sha256)
        if kind == "truncated":
            assert exc.detail["actual_size"] == spec.size - 1


def test_flip_in_the_first_byte_too(model_copy: ModelFiles) -> None:
    flip_byte(model_copy.model_dir / "model.onnx", 0)
    with pytest.raises(ModelCorrupt):
        read_verified(model_copy.manifest, model_copy.manifest.onnx_file, model_copy.model_dir)


def test_directory_in_place_of_a_file(model_copy: ModelFiles) -> None:
    (model_copy.model_dir / "tokenizer.json").unlink()
    (model_copy.model_dir / "tokenizer.json").mkdir()
    with pytest.raises(ModelMissing, match="not a regular file"):
        verify_model_dir(model_copy.manifest, model_copy.model_dir)


def test_tokenizer_for_the_chunker_has_no_truncation_or_padding(model_files: ModelFiles) -> None:
    tok = load_tokenizer(model_files.manifest, model_files.model_dir)
    assert tok.truncation is None and tok.padding is None
    text = "PostgreSQL VACUUM reclaims storage. " * 100
    enc = tok.encode(text, add_special_tokens=False)
    assert len(enc.ids) == 1000  # 10 pieces per sentence, nothing cut at 128 or 256
    assert enc.tokens[:6] == ["post", "##gre", "##s", "##q", "##l", "vacuum"]
    # character offsets map every piece back to the original text (the chunker needs them)
    for piece, (start, end) in zip(enc.tokens, enc.offsets, strict=True):
        assert text[start:end].lower() == piece.removeprefix("##")
    short = tok.encode("hi")
    assert short.ids == [101, 7632, 102]  # no padding to 128 (the file's baked-in setting)


def test_chunker_tokenizer_survives_a_corrupt_onnx(model_copy: ModelFiles) -> None:
    flip_byte(model_copy.model_dir / "model.onnx", 1234)
    tok = load_tokenizer(model_copy.manifest, model_copy.model_dir)
    assert tok.encode("hello").ids == [101, 7592, 102]


def test_a_good_copy_loads_and_embeds(model_copy: ModelFiles) -> None:
    emb = OnnxEmbedder.load(model_copy.manifest, model_copy.model_dir, threads=1)
    assert np.isclose(np.linalg.norm(emb.embed(["ok"])[0]), 1.0, atol=1e-5)

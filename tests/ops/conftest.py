"""Fixtures for the operations tests: a small corpus indexed once with the real model."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.search.indexed import IndexedCorpus, build, copy_of

PAGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "wal-intro.html": ("manual", ("wal",)),
    "backup-dump.html": ("manual", ("backup",)),
    "tutorial-join.html": ("tutorial", ()),
}


@pytest.fixture(scope="session")
def ops_template(tmp_path_factory: pytest.TempPathFactory) -> IndexedCorpus:
    """Three PostgreSQL manual pages indexed through the real pipeline (once per worker)."""
    return build(tmp_path_factory.mktemp("ops-indexed") / "data", PAGES)


@pytest.fixture
def corpus(ops_template: IndexedCorpus, tmp_path: Path) -> IndexedCorpus:
    """A private copy of the indexed corpus."""
    return copy_of(ops_template, tmp_path / "data")

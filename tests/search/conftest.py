"""Fixtures for the search tests: a real store in a temp dir, started and stopped."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from backend.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "data")
    s.start()
    try:
        yield s
    finally:
        s.stop()

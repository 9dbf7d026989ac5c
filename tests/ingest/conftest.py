"""Fixtures for the ingest tests: the real model tokenizer, loaded once."""

from __future__ import annotations

import pytest

from backend.ingest.chunking import HFSpanTokenizer
from tests.ingest.fixtures import tokenizer_path


@pytest.fixture(scope="session")
def tokenizer() -> HFSpanTokenizer:
    return HFSpanTokenizer.from_file(tokenizer_path())

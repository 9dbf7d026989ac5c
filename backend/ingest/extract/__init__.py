"""File → canonical text with structure (title, heading paths, pages, blocks).

Public API::

    extract_file(path, limits=None) -> ExtractedDocument      # in-process, no timeout
    extract_bytes(name, data, limits=None) -> ExtractedDocument
    ExtractionWorker(limits).start()/.extract(path, timeout=None)/.stop()   # child process
    ExtractedDocument, Block, EXTRACT_VERSION, SUPPORTED_MIMES
    SourceGone, SourceUnreadable, ExtractorUnavailable                   # raised, see errors.py
"""

from __future__ import annotations

from backend.ingest.extract.dispatch import extract_bytes, extract_file
from backend.ingest.extract.document import (
    EXTRACT_VERSION,
    SUPPORTED_MIMES,
    Block,
    ExtractedDocument,
)
from backend.ingest.extract.errors import ExtractorUnavailable, SourceGone, SourceUnreadable
from backend.ingest.extract.worker import ExtractionWorker

__all__ = [
    "EXTRACT_VERSION",
    "SUPPORTED_MIMES",
    "Block",
    "ExtractedDocument",
    "ExtractionWorker",
    "ExtractorUnavailable",
    "SourceGone",
    "SourceUnreadable",
    "extract_bytes",
    "extract_file",
]

"""Limits that keep extraction of hostile or pathological files bounded.

One frozen dataclass, passed explicitly to :func:`backend.ingest.extract.extract_file` and to the
:class:`backend.ingest.extract.worker.ExtractionWorker`; nothing reads it from globals. Every field
has a documented default chosen for a desktop machine; the lead maps them to ``Settings`` fields.
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ExtractLimits:
    """Bounds for one extraction. Exceeding a bound yields a result with a reason, never a crash."""

    max_file_bytes: int = 200 * MIB
    """Larger files are not read at all (status ``unsupported``; the reason names the size)."""

    docx_max_uncompressed_bytes: int = 256 * MIB
    """Zip-bomb guard: the sum of the declared uncompressed sizes of all archive members, checked
    from the central directory before inflating anything, and the number of bytes actually inflated
    while streaming, must both stay below this."""

    docx_max_ratio: float = 100.0
    """Zip-bomb guard: uncompressed/compressed ratio allowed for any member larger than
    :attr:`docx_ratio_min_bytes` (real Word XML compresses 5-30x; bombs compress > 1000x)."""

    docx_ratio_min_bytes: int = 1 * MIB
    """Members smaller than this are exempt from the ratio check (tiny members can legitimately
    have huge ratios and are harmless)."""

    docx_max_members: int = 10_000
    """Archives with more members than this are refused (central-directory flooding)."""

    pdf_max_pages: int = 20_000
    """PDFs with more pages are refused (status ``unsupported``)."""

    max_text_chars: int = 100_000_000
    """Extracted text longer than this (in characters) fails with a reason instead of being
    chunked and embedded for hours; ~25M tokens, far beyond any real document."""

    timeout_seconds: float = 120.0
    """Wall-clock limit for one extraction when run through the worker process; the child is
    killed on expiry and the file is reported ``failed`` with reason ``timed out``."""

    def __post_init__(self) -> None:
        for name in (
            "max_file_bytes",
            "docx_max_uncompressed_bytes",
            "docx_ratio_min_bytes",
            "docx_max_members",
            "pdf_max_pages",
            "max_text_chars",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"ExtractLimits.{name} must be positive")
        if self.docx_max_ratio <= 1.0:
            raise ValueError("ExtractLimits.docx_max_ratio must be > 1")
        if self.timeout_seconds <= 0:
            raise ValueError("ExtractLimits.timeout_seconds must be positive")

"""Bytes → str for text formats: BOM, declared charset, UTF-8, then charset detection.

Order: a byte-order mark wins; then a charset the document declares (HTML ``<meta charset>``);
then strict UTF-8; then "UTF-8 with a few corrupt bytes" (kept as UTF-8, bad bytes become
U+FFFD and a warning says how many); then ``charset-normalizer`` on a bounded sample for legacy
encodings. Data that still looks binary (NUL bytes without a UTF-16/32 BOM, many control
characters) is refused with ``None`` so the caller can report ``unsupported``.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_DETECT_SAMPLE = 256 * 1024
_BINARY_SAMPLE = 64 * 1024
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")
_NON_ASCII_VALID = re.compile(r"[^\x00-\x7f\ufffd]")


@dataclass(frozen=True, slots=True)
class Decoded:
    """Decoded text with the encoding used and any warnings (e.g. replaced bytes)."""

    text: str
    encoding: str
    warnings: tuple[str, ...] = ()


def _finish(raw: str, encoding: str, warnings: tuple[str, ...] = ()) -> Decoded | None:
    sample = raw[:_BINARY_SAMPLE]
    if sample and len(_CONTROL.findall(sample)) > max(8, len(sample) // 100):
        return None
    return Decoded(raw, encoding, warnings)


def _replaced(data: bytes, encoding: str) -> Decoded | None:
    text = data.decode(encoding, errors="replace")
    bad = text.count("\ufffd")
    warnings = (f"{bad} undecodable byte sequence(s) replaced with U+FFFD ({encoding})",) if bad else ()
    return _finish(text, encoding, warnings)


def _utf16_without_bom(data: bytes) -> str | None:
    sample = data[: _BINARY_SAMPLE & ~1]
    if len(sample) < 4:
        return None
    even_zero = sample[0::2].count(0) / (len(sample) / 2)
    odd_zero = sample[1::2].count(0) / (len(sample) / 2)
    if odd_zero > 0.3 and even_zero < 0.05:
        return "utf-16-le"
    if even_zero > 0.3 and odd_zero < 0.05:
        return "utf-16-be"
    return None


def _known_codec(name: str | None) -> str | None:
    if not name:
        return None
    try:
        codec = codecs.lookup(name.strip().lower()).name
    except LookupError:
        return None
    # WHATWG: documents labelled latin-1/ascii are decoded as windows-1252.
    return "cp1252" if codec in {"latin-1", "iso8859-1", "ascii"} else codec


def decode_text(data: bytes, *, declared: str | None = None) -> Decoded | None:
    """Decode ``data`` as text, or return ``None`` when it does not look like text."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return _replaced(data[len(bom) :], encoding)
    if b"\x00" in data[:_BINARY_SAMPLE]:
        utf16 = _utf16_without_bom(data)
        return _replaced(data, utf16) if utf16 else None
    codec = _known_codec(declared)
    if codec and codec not in {"utf-8", "utf-16-le", "utf-16-be", "utf-16", "utf-32"}:
        return _replaced(data, codec)
    try:
        return _finish(data.decode("utf-8"), "utf-8")
    except UnicodeDecodeError:
        pass
    lenient = data.decode("utf-8", errors="replace")
    if _NON_ASCII_VALID.search(lenient):
        # Valid multi-byte UTF-8 sequences exist, so this is UTF-8 with some corrupt bytes.
        bad = lenient.count("\ufffd")
        return _finish(lenient, "utf-8", (f"{bad} invalid UTF-8 sequence(s) replaced with U+FFFD",))
    return _detect_legacy(data)


def _detect_legacy(data: bytes) -> Decoded | None:
    from charset_normalizer import from_bytes  # lazy: only legacy encodings need it

    best = from_bytes(data[:_DETECT_SAMPLE]).best()
    encoding = _known_codec(best.encoding if best is not None else None)
    if encoding is None:
        encoding = "cp1252"
    return _replaced(data, encoding)

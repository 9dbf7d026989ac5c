"""File type detection: magic bytes first, then HTML sniffing, then the extension.

The result is a value, never an exception: ``Sniffed(mime, supported, reason)``. Supported
types are the five MIME strings in :mod:`backend.ingest.extract.document`; anything else (known
binary formats, archives that are not Word documents, undecodable data) is unsupported with a
reason a person can read ("legacy .doc ... not supported").
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import PurePath
from xml.parsers import expat

from backend.ingest.extract.document import (
    MIME_DOCX,
    MIME_HTML,
    MIME_MARKDOWN,
    MIME_PDF,
    MIME_TEXT,
)
from backend.ingest.extract.xmlstream import (
    ArchiveRefused,
    InflateBudget,
    iter_member,
    parse_stream,
)

_HEAD = 64 * 1024
_BINARY_MAGIC: tuple[tuple[bytes, str, str], ...] = (
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "application/x-ole-storage",
     "legacy Office file (.doc/.xls/.ppt) or password-protected Office document"),
    (b"{\\rtf", "application/rtf", "RTF documents"),
    (b"\x89PNG\r\n\x1a\n", "image/png", "images (no OCR)"),
    (b"\xff\xd8\xff", "image/jpeg", "images (no OCR)"),
    (b"GIF8", "image/gif", "images (no OCR)"),
    (b"II*\x00", "image/tiff", "images (no OCR)"),
    (b"MM\x00*", "image/tiff", "images (no OCR)"),
    (b"%!PS", "application/postscript", "PostScript"),
    (b"\x1f\x8b", "application/gzip", "compressed archives"),
    (b"BZh", "application/x-bzip2", "compressed archives"),
    (b"\xfd7zXZ\x00", "application/x-xz", "compressed archives"),
    (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed", "compressed archives"),
    (b"Rar!\x1a\x07", "application/vnd.rar", "compressed archives"),
    (b"SQLite format 3\x00", "application/vnd.sqlite3", "databases"),
    (b"\x7fELF", "application/x-executable", "executables"),
    (b"MZ", "application/x-msdownload", "executables"),
    (b"ID3", "audio/mpeg", "audio"),
    (b"OggS", "audio/ogg", "audio"),
    (b"fLaC", "audio/flac", "audio"),
    (b"RIFF", "application/x-riff", "audio/video/images in RIFF containers"),
    (b"wOFF", "font/woff", "fonts"),
)  # fmt: skip
_HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<body", b"<title", b"<script",
                b"<style", b"<iframe", b"<h1", b"<div", b"<font", b"<table", b"<a", b"<b",
                b"<br", b"<p", b"<meta")  # fmt: skip
_TEXT_BASED = frozenset({"application/rtf", "application/postscript"})
_MARKDOWN_EXT = frozenset({".md", ".markdown", ".mdown", ".mkd", ".mkdn"})
_HTML_EXT = frozenset({".html", ".htm", ".xhtml"})
_TEXT_EXT = frozenset({".txt", ".text"})
_ZIP_KINDS = {
    "xl/workbook.xml": "spreadsheets (.xlsx)",
    "ppt/presentation.xml": "presentations (.pptx)",
    "META-INF/container.xml": "e-books (.epub)",
    "content.xml": "OpenDocument files",
}


@dataclass(frozen=True, slots=True)
class Sniffed:
    """Detected type. ``reason`` explains why an unsupported type is unsupported."""

    mime: str
    supported: bool
    reason: str | None = None


def _unsupported(mime: str, what: str) -> Sniffed:
    return Sniffed(mime, False, f"{what} are not supported")


def looks_binary(head: bytes) -> bool:
    """NUL bytes (without a UTF-16/32 byte pattern) or many control bytes mean binary."""
    if head.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        return False
    if b"\x00" in head:
        half = len(head) // 2 or 1
        zeros = max(head[0::2].count(0), head[1::2].count(0)) / half
        return not (zeros > 0.3 and min(head[0::2].count(0), head[1::2].count(0)) / half < 0.05)
    controls = sum(head.count(bytes([b])) for b in (*range(1, 9), *range(14, 27), *range(28, 32)))
    return controls > max(8, len(head) // 100)


def _sniff_zip(data: bytes) -> Sniffed | None:
    """docx when [Content_Types].xml names a WordprocessingML main part; None when unreadable."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = set(zf.namelist())
            if "[Content_Types].xml" in names:
                found: list[bool] = []

                def start(name: str, attrs: dict[str, str]) -> None:
                    content_type = attrs.get("ContentType", "")
                    if name.endswith("}Override") and "wordprocessingml" in content_type:
                        found.append(True)
                    if name.endswith("}Override") and "ms-word.document" in content_type:
                        found.append(True)

                member = iter_member(zf, "[Content_Types].xml", InflateBudget(1024 * 1024))
                parse_stream(member, start, lambda _n: None)
                if found:
                    return Sniffed(MIME_DOCX, True)
            for marker, what in _ZIP_KINDS.items():
                if marker in names:
                    return _unsupported("application/zip", what)
            return _unsupported("application/zip", "ZIP archives other than Word (.docx)")
    except (zipfile.BadZipFile, ArchiveRefused, expat.ExpatError, EOFError, OSError):
        return None


def _is_html(head: bytes) -> bool:
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n\x0c").lower()
    while True:
        if text.startswith(b"<?xml"):
            end = text.find(b"?>")
        elif text.startswith(b"<!--"):
            end = text.find(b"-->")
        else:
            break
        if end < 0:
            return False
        text = text[end + 2 :].lstrip(b"> \t\r\n\x0c")
    return any(
        text.startswith(tag) and text[len(tag) : len(tag) + 1] in {b" ", b">", b"\t", b"\n", b"/"}
        for tag in _HTML_STARTS
    )


def _sniff_binary(ext: str, head: bytes) -> Sniffed | None:
    for magic, mime, what in _BINARY_MAGIC:
        # Magic numbers made of letters ("MZ", "ID3") also start ordinary text files; only
        # trust them when the data is binary. RTF and PostScript are text-based formats.
        if head.startswith(magic) and (mime in _TEXT_BASED or not magic.isalnum() or looks_binary(head)):
            return _unsupported(mime, what)
    if head[4:8] == b"ftyp":
        return _unsupported("video/mp4", "audio/video files")
    if not looks_binary(head):
        return None
    if ext in {".pdf", ".docx"}:
        return Sniffed(
            "application/octet-stream",
            False,
            f"file named {ext} is not a {ext[1:].upper()} (no valid header); binary data "
            "of unknown type is not supported",
        )
    return Sniffed("application/octet-stream", False, "binary data of unknown type")


def sniff(name: str, data: bytes) -> Sniffed:
    """Detect the type of ``data`` (the file's bytes, or its first 64 KiB) named ``name``."""
    ext = PurePath(name).suffix.lower()
    head = data[:_HEAD]
    if b"%PDF-" in head[:1024]:
        return Sniffed(MIME_PDF, True)
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        zipped = _sniff_zip(data)
        if zipped is not None:
            return zipped
        if ext == ".docx":
            return Sniffed(MIME_DOCX, True)  # incomplete data: let extraction report corruption
        return _unsupported("application/zip", "unreadable ZIP archives")
    binary = _sniff_binary(ext, head)
    if binary is not None:
        return binary
    if ext in _MARKDOWN_EXT:
        return Sniffed(MIME_MARKDOWN, True)
    if ext in _TEXT_EXT:
        return Sniffed(MIME_TEXT, True)
    if ext in _HTML_EXT or _is_html(head):
        return Sniffed(MIME_HTML, True)
    return Sniffed(MIME_TEXT, True)

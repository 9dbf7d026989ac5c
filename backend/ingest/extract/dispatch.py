"""``extract_file``: read a file once (bounded), detect its type, run the matching extractor.

Content problems come back as values (``ExtractedDocument`` with status and reason); only
problems with the *source* raise (:class:`SourceGone`, :class:`SourceUnreadable`). The file is
read into memory exactly once, capped at ``limits.max_file_bytes``, so a file that changes or
vanishes mid-extraction cannot produce a mix of two versions.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import stat
from pathlib import Path, PurePath

from backend.ingest.extract.document import (
    MIME_DOCX,
    MIME_HTML,
    MIME_MARKDOWN,
    MIME_PDF,
    MIME_TEXT,
    ExtractedDocument,
    not_ok,
)
from backend.ingest.extract.docx import extract_docx
from backend.ingest.extract.errors import SourceGone, SourceUnreadable
from backend.ingest.extract.html import extract_html
from backend.ingest.extract.pdf import extract_pdf
from backend.ingest.extract.plaintext import extract_markdown, extract_plain
from backend.ingest.extract.textdecode import decode_text
from backend.ingest.limits import ExtractLimits
from backend.ingest.sniff import sniff

# OS differences for opening: O_BINARY exists only on Windows, O_NONBLOCK only on POSIX (it
# keeps a FIFO swapped in after the stat check from blocking the open). Windows is untested here.
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0)
_MIME_BY_EXT = {".pdf": MIME_PDF, ".docx": MIME_DOCX, ".html": MIME_HTML, ".htm": MIME_HTML,
                ".md": MIME_MARKDOWN, ".markdown": MIME_MARKDOWN}  # fmt: skip


def _too_large(size: int, limits: ExtractLimits, mime: str) -> ExtractedDocument:
    return not_ok(
        mime,
        "unsupported",
        f"file is {size} bytes, larger than the limit of {limits.max_file_bytes} bytes",
    )


def read_source(path: Path, limits: ExtractLimits) -> bytes | ExtractedDocument:
    """The file's bytes, or an ``unsupported`` result (too large, not a regular file).

    Raises :class:`SourceGone` if the path no longer exists or is now a directory, and
    :class:`SourceUnreadable` for other OS errors (permissions, locks, I/O errors).
    """
    mime = _MIME_BY_EXT.get(path.suffix.lower(), "application/octet-stream")
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
        raise SourceGone("file no longer exists", detail={"path": str(path)}) from exc
    except OSError as exc:
        raise SourceUnreadable(f"cannot open file: {exc.strerror or exc}", detail={"path": str(path)}) from exc
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise SourceGone("path is now a directory", detail={"path": str(path)})
        if not stat.S_ISREG(info.st_mode):
            return not_ok(mime, "unsupported", "not a regular file")
        if info.st_size > limits.max_file_bytes:
            return _too_large(info.st_size, limits, mime)
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(limits.max_file_bytes + 1)
    except OSError as exc:
        raise SourceUnreadable(f"cannot read file: {exc.strerror or exc}", detail={"path": str(path)}) from exc
    finally:
        os.close(fd)
    if len(data) > limits.max_file_bytes:  # grew after fstat
        return _too_large(len(data), limits, mime)
    return data


def extract_file(path: Path, limits: ExtractLimits | None = None, *, name: str | None = None) -> ExtractedDocument:
    """Extract one file in this process (no timeout; see ``ExtractionWorker`` for that).

    ``name`` is the document's original file name when ``path`` has none worth sniffing (a
    content-addressed stored copy); its extension is a type hint after the magic bytes.
    """
    limits = limits or ExtractLimits()
    data = read_source(Path(path), limits)
    if isinstance(data, ExtractedDocument):
        return data
    doc = extract_bytes(name or Path(path).name, data, limits)
    return dataclasses.replace(doc, sha256=hashlib.sha256(data).hexdigest())


def extract_bytes(name: str, data: bytes, limits: ExtractLimits | None = None) -> ExtractedDocument:
    """Extract in-memory ``data``; ``name`` (a file name) only serves as an extension hint."""
    limits = limits or ExtractLimits()
    if not data or data.isspace():
        mime = _MIME_BY_EXT.get(PurePath(name).suffix.lower(), MIME_TEXT)
        return not_ok(mime, "no_text", "empty file" if not data else "file contains only whitespace")
    sniffed = sniff(name, data)
    if not sniffed.supported:
        return not_ok(sniffed.mime, "unsupported", sniffed.reason or "unsupported file type")
    try:
        doc = _run(sniffed.mime, data, limits)
    except (MemoryError, RecursionError) as exc:
        return not_ok(sniffed.mime, "failed", f"file too complex to extract: {type(exc).__name__}")
    except Exception as exc:  # noqa: BLE001 - a hostile file must never stop the queue
        return not_ok(sniffed.mime, "failed", f"extractor error: {type(exc).__name__}: {exc}")
    if doc.ok and len(doc.text) > limits.max_text_chars:
        return not_ok(
            doc.mime,
            "failed",
            f"extracted text has {len(doc.text)} characters, more than the limit of {limits.max_text_chars}",
            pages=doc.pages,
        )
    return doc


def _run(mime: str, data: bytes, limits: ExtractLimits) -> ExtractedDocument:
    if mime == MIME_PDF:
        return extract_pdf(data, limits)
    if mime == MIME_DOCX:
        return extract_docx(data, limits)
    if mime == MIME_HTML:
        return extract_html(data)
    decoded = decode_text(data)
    if decoded is None:
        return not_ok(mime, "unsupported", "not valid text (binary data or unknown encoding)")
    return extract_markdown(decoded) if mime == MIME_MARKDOWN else extract_plain(decoded)

"""Hostile and broken files: each yields an explained result (or a source error), never a crash."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pytest

from backend.ingest.extract import SourceGone, SourceUnreadable, extract_bytes, extract_file
from backend.ingest.extract.document import MIME_TEXT
from backend.ingest.limits import ExtractLimits
from tests.ingest.fixtures import CONTENT_TYPES, document_xml, encrypt_pdf, make_docx, make_pdf


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_empty_file_is_no_text(tmp_path: Path) -> None:
    doc = extract_file(write(tmp_path, "empty.pdf", b""))
    assert doc.status == "no_text" and doc.reason == "empty file" and doc.text == ""


def test_whitespace_only_file_is_no_text() -> None:
    doc = extract_bytes("blank.txt", b" \n\t\r\n ")
    assert doc.status == "no_text" and doc.reason and "whitespace" in doc.reason


def test_binary_renamed_pdf_is_unsupported(tmp_path: Path) -> None:
    doc = extract_file(write(tmp_path, "photo.pdf", os.urandom(4096) + b"\x00" * 64))
    assert doc.status == "unsupported"
    assert doc.reason and "not a PDF" in doc.reason


def test_png_renamed_pdf_names_its_real_type() -> None:
    doc = extract_bytes("scan.pdf", b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)
    assert (doc.status, doc.mime) == ("unsupported", "image/png")


def test_encrypted_pdf_fails_with_reason() -> None:
    doc = extract_bytes("secret.pdf", encrypt_pdf(make_pdf([["top secret"]]), user_password="pw"))
    assert doc.status == "failed" and doc.reason and "encrypted PDF" in doc.reason


def test_pdf_with_owner_password_only_opens_with_empty_password() -> None:
    doc = extract_bytes("locked.pdf", encrypt_pdf(make_pdf([["readable text"]]), user_password=""))
    assert doc.status == "ok" and doc.text == "readable text"


def test_scanned_pdf_is_no_text() -> None:
    doc = extract_bytes("scan.pdf", make_pdf([[], []]))
    assert doc.status == "no_text"
    assert doc.reason == "PDF has no text layer (scanned?); OCR is not supported"
    assert doc.pages == 2


def test_truncated_pdf_fails() -> None:
    data = make_pdf([["some text"] * 20] * 3)
    doc = extract_bytes("cut.pdf", data[: len(data) // 3])
    assert doc.status in {"failed", "no_text"} and doc.reason


def test_truncated_docx_fails() -> None:
    data = make_docx([("paragraph text " * 50, None)] * 20)
    doc = extract_bytes("cut.docx", data[: len(data) // 2])
    assert doc.status == "failed" and doc.reason and "docx" in doc.reason


def _bomb(member: str, size: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("[Content_Types].xml", CONTENT_TYPES)
        with zf.open(member, "w", force_zip64=True) as out:
            chunk = b"A" * (1024 * 1024)
            for _ in range(size // len(chunk)):
                out.write(chunk)
    return buffer.getvalue()


def test_docx_zip_bomb_ratio_is_refused_before_inflating() -> None:
    data = _bomb("word/document.xml", 64 * 1024 * 1024)
    assert len(data) < 200_000
    doc = extract_bytes("bomb.docx", data)
    assert doc.status == "failed" and doc.reason and "zip bomb guard" in doc.reason
    assert "compresses" in doc.reason


def test_docx_zip_bomb_total_size_is_refused() -> None:
    limits = ExtractLimits(docx_max_uncompressed_bytes=8 * 1024 * 1024, docx_max_ratio=10_000)
    doc = extract_bytes("bomb.docx", _bomb("word/document.xml", 16 * 1024 * 1024), limits)
    assert doc.status == "failed" and doc.reason and "declared uncompressed" in doc.reason


def test_docx_lying_central_directory_is_stopped_while_streaming() -> None:
    """A member whose declared size is small but which inflates to more than the cap."""
    body = document_xml("<w:p><w:r><w:t>" + "x" * (3 * 1024 * 1024) + "</w:t></w:r></w:p>")
    data = bytearray(make_docx([], members={}))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", CONTENT_TYPES)
        zf.writestr("word/document.xml", body)
    data = bytearray(buffer.getvalue())
    # Patch the uncompressed size in the local header and central directory to 1000 bytes.
    real = len(body.encode()).to_bytes(4, "little")
    assert data.count(real) == 2
    data = bytearray(bytes(data).replace(real, (1000).to_bytes(4, "little")))
    limits = ExtractLimits(docx_max_uncompressed_bytes=1024 * 1024)
    doc = extract_bytes("liar.docx", bytes(data), limits)
    assert doc.status == "failed" and doc.reason


def test_docx_with_dtd_entities_is_refused() -> None:
    evil = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
        '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        "<w:body><w:p><w:r><w:t>&lol2;</w:t></w:r></w:p></w:body></w:document>"
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("[Content_Types].xml", CONTENT_TYPES)
        zf.writestr("word/document.xml", evil)
    doc = extract_bytes("evil.docx", buffer.getvalue())
    assert doc.status == "failed" and doc.reason and "DTD" in doc.reason


def test_zip_that_is_not_a_word_document_is_unsupported() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("xl/workbook.xml", "<workbook/>")
    doc = extract_bytes("sheet.docx", buffer.getvalue())
    assert doc.status == "unsupported" and doc.reason and "spreadsheets" in doc.reason


def test_five_megabyte_single_line_text(tmp_path: Path) -> None:
    line = ("word " * 1_000_000).encode()
    doc = extract_file(write(tmp_path, "line.txt", line))
    assert doc.status == "ok" and len(doc.text) == len(line) and len(doc.blocks) == 1


def test_invalid_utf8_is_replaced_with_a_warning() -> None:
    data = "héllo wörld ".encode() * 10 + b"\xff\xfe\xc3(" + b" more text"
    doc = extract_bytes("mixed.txt", data)
    assert doc.status == "ok" and doc.encoding == "utf-8"
    assert "héllo wörld" in doc.text and "\ufffd" in doc.text
    assert doc.warnings and "invalid UTF-8" in doc.warnings[0]


def test_legacy_encoding_is_detected() -> None:
    text = "Größere Übungen für Änderungen, schöne Grüße aus Köln. " * 20
    doc = extract_bytes("latin.txt", text.encode("cp1252"))
    assert doc.status == "ok" and doc.text == text


def test_utf16_with_and_without_bom() -> None:
    text = "Plain UTF-16 text with ünïcödé.\n"
    assert extract_bytes("a.txt", text.encode("utf-16")).text == text
    assert extract_bytes("b.txt", text.encode("utf-16-le")).text == text


def test_binary_text_file_is_unsupported() -> None:
    doc = extract_bytes("data.txt", bytes(range(256)) * 64)
    assert doc.status == "unsupported" and doc.mime == "application/octet-stream"


def test_file_deleted_before_read_raises_source_gone(tmp_path: Path) -> None:
    path = write(tmp_path, "gone.txt", b"text")
    path.unlink()
    with pytest.raises(SourceGone) as info:
        extract_file(path)
    assert info.value.code == "source_gone" and info.value.status == 404


def test_path_replaced_by_directory_raises_source_gone(tmp_path: Path) -> None:
    (tmp_path / "now-a-dir").mkdir()
    with pytest.raises(SourceGone):
        extract_file(tmp_path / "now-a-dir")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores permissions")
def test_unreadable_file_raises_source_unreadable(tmp_path: Path) -> None:
    path = write(tmp_path, "locked.txt", b"text")
    path.chmod(0)
    with pytest.raises(SourceUnreadable):
        extract_file(path)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs only")
def test_fifo_is_not_read(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    doc = extract_file(fifo)
    assert doc.status == "unsupported" and doc.reason == "not a regular file"


def test_file_over_size_limit_is_not_read(tmp_path: Path) -> None:
    doc = extract_file(write(tmp_path, "big.txt", b"x" * 2048), ExtractLimits(max_file_bytes=1024))
    assert doc.status == "unsupported" and doc.reason and "larger than the limit" in doc.reason


def test_extracted_text_over_limit_fails() -> None:
    doc = extract_bytes("a.txt", b"word " * 1000, ExtractLimits(max_text_chars=100))
    assert doc.status == "failed" and doc.reason and "more than the limit" in doc.reason


def test_name_hint_is_used_for_stored_copies(tmp_path: Path) -> None:
    path = write(tmp_path, "3f2a9c", b"# Title\n\nbody\n")
    assert extract_file(path).mime == MIME_TEXT
    doc = extract_file(path, name="notes.md")
    assert doc.mime == "text/markdown" and doc.title == "Title"

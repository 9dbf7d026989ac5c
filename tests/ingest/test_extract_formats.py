"""Each extractor on generated input: text, title, heading paths, pages, block invariants."""

from __future__ import annotations

import io
import re
import zipfile

from backend.ingest.extract import ExtractedDocument, extract_bytes
from backend.ingest.extract.document import MIME_DOCX, MIME_HTML, MIME_MARKDOWN, MIME_PDF
from tests.ingest.fixtures import make_docx, make_pdf


def check_invariants(doc: ExtractedDocument) -> None:
    """Blocks sorted, non-overlapping, trimmed, and covering every non-whitespace character."""
    assert doc.status == "ok" and doc.text.strip()
    covered = 0
    for block in doc.blocks:
        assert covered <= block.start < block.end <= len(doc.text)
        body = doc.text[block.start : block.end]
        assert body == body.strip()
        assert not doc.text[covered : block.start].strip(), "text outside blocks"
        covered = block.end
    assert not doc.text[covered:].strip()


def texts(doc: ExtractedDocument, kind: str | None = None) -> list[str]:
    return [doc.text[b.start : b.end] for b in doc.blocks if kind is None or b.kind == kind]


def test_plain_text_paragraphs_and_crlf() -> None:
    doc = extract_bytes("notes.txt", b"First line\r\nsame paragraph\r\n\r\n\r\n  Second para  \r\n")
    check_invariants(doc)
    assert texts(doc) == ["First line\nsame paragraph", "Second para"]
    assert doc.encoding == "utf-8" and doc.title is None


def test_markdown_structure() -> None:
    source = (
        "---\ntitle: Front Title\ntags: [a]\n---\n\n"
        "# Guide\n\nIntro *text*.\n\n## Install [it](http://x)\n\n- one\n- two\n  continued\n\n"
        "```sh\n# not a heading\nmake\n```\n\nSetext Two\n----------\n\nBody.\n"
    )
    doc = extract_bytes("guide.md", source.encode())
    check_invariants(doc)
    assert doc.mime == MIME_MARKDOWN
    assert doc.title == "Front Title"
    assert doc.text == source  # Markdown keeps its source as the canonical text
    kinds = [(b.kind, doc.text[b.start : b.end].split("\n")[0], b.heading_path) for b in doc.blocks]
    assert ("heading", "# Guide", ("Guide",)) in kinds
    assert ("heading", "## Install [it](http://x)", ("Guide", "Install it")) in kinds
    assert ("list_item", "- two", ("Guide", "Install it")) in kinds
    assert ("code", "```sh", ("Guide", "Install it")) in kinds
    assert ("heading", "Setext Two", ("Guide", "Setext Two")) in kinds
    assert ("meta", "---", ()) in kinds
    assert not any("not a heading" in path for b in doc.blocks for path in b.heading_path)


def test_html_visible_text_title_headings() -> None:
    page = b"""<!DOCTYPE html><html><head><title> The  Title </title>
    <style>body { color: red }</style><script>var secret = 1;</script></head><body>
    <nav><a href="/">Home</a> | <a href="/x">Menu item</a></nav>
    <div class="navheader"><table><tr><td>Prev</td><td>Next</td></tr></table></div>
    <h1>Main &amp; Only</h1><p>First <b>bold</b>
    paragraph.<br>After break.</p>
    <h2>Sub <a href="#">section</a></h2><ul><li>item one</li><li>item two</li></ul>
    <pre>  code line 1
  code line 2</pre><table><tr><td>a</td><td>b</td></tr></table>
    <footer>Visible footer</footer><noscript>enable js</noscript>
    </body></html>"""
    doc = extract_bytes("page.html", page)
    check_invariants(doc)
    assert doc.mime == MIME_HTML and doc.title == "The Title"
    for noise in ("secret", "color", "Menu item", "Prev", "enable js"):
        assert noise not in doc.text
    assert texts(doc, "heading") == ["Main & Only", "Sub section"]
    assert "First bold paragraph.\nAfter break." in texts(doc)
    assert texts(doc, "list_item") == ["item one", "item two"]
    assert texts(doc, "code") == ["code line 1\n  code line 2"]  # blocks start on text
    assert texts(doc, "table") == ["a b"]
    by_text = {doc.text[b.start : b.end]: b.heading_path for b in doc.blocks}
    assert by_text["item one"] == ("Main & Only", "Sub section")
    assert "Visible footer" in doc.text


def test_html_declared_legacy_charset() -> None:
    page = (
        '<html><head><meta charset="windows-1252"><title>Caf\xe9</title></head>'
        "<body><p>na\xefve \u20ac</p></body></html>"
    )
    doc = extract_bytes("legacy.html", page.encode("cp1252"))
    assert doc.title == "Café" and "naïve €" in doc.text and doc.encoding == "cp1252"


def test_html_without_visible_text_is_no_text() -> None:
    doc = extract_bytes("empty.html", b"<html><head><script>x()</script></head><body> </body></html>")
    assert doc.status == "no_text" and doc.reason


def test_pdf_pages_outline_and_title() -> None:
    data = make_pdf(
        [["Intro", "Hello world (one).", "Second line here."], [], ["Chapter Two", "More text."]],
        outline=[("Intro", 0), ("Chapter Two", 2)],
        title="My PDF",
    )
    doc = extract_bytes("report.pdf", data)
    check_invariants(doc)
    assert doc.mime == MIME_PDF and doc.title == "My PDF" and doc.pages == 3
    assert doc.warnings == ("1 of 3 pages have no text layer",)
    pages = {doc.text[b.start : b.end]: (b.page, b.kind, b.heading_path) for b in doc.blocks}
    assert pages["Hello world (one).\nSecond line here."] == (1, "paragraph", ("Intro",))
    assert pages["Chapter Two"] == (3, "heading", ("Chapter Two",))
    assert pages["More text."] == (3, "paragraph", ("Chapter Two",))


def test_pdf_running_headers_are_dropped() -> None:
    pages = [[f"Chapter 1: Things {n}", f"Body text of page {n} is here.", f"{n}"] for n in range(5)]
    doc = extract_bytes("book.pdf", make_pdf(pages))
    check_invariants(doc)
    assert "Chapter 1" not in doc.text
    assert "Body text of page 3 is here." in doc.text
    assert not re.search(r"(?m)^\d$", doc.text)


def test_docx_headings_styles_title_tables() -> None:
    table = (
        "<w:tbl><w:tr><w:tc><w:p><w:r><w:t>cell A</w:t></w:r></w:p></w:tc>"
        "<w:tc><w:p><w:r><w:t>cell B</w:t></w:r></w:p></w:tc></w:tr></w:tbl>"
        '<w:p><w:pPr><w:outlineLvl w:val="0"/></w:pPr><w:r><w:t>Outline One</w:t></w:r></w:p>'
        "<w:p><w:r><w:t>del</w:t></w:r><w:r><w:delText>deleted</w:delText></w:r>"
        "<w:r><w:br/><w:t>after break</w:t></w:r></w:p>"
    )
    data = make_docx(
        [("Doc Title", "Title"), ("Intro", "berschrift1"), ("Hello\tworld", None),
         ("Sub", "MyHead"), ("Body text & more", None)],
        title="Core Title",
        extra_body=table,
    )  # fmt: skip
    doc = extract_bytes("report.docx", data)
    check_invariants(doc)
    assert doc.mime == MIME_DOCX and doc.title == "Core Title"
    blocks = {doc.text[b.start : b.end]: (b.kind, b.heading_path) for b in doc.blocks}
    assert blocks["Intro"] == ("heading", ("Intro",))
    assert blocks["Hello\tworld"] == ("paragraph", ("Intro",))
    assert blocks["Sub"] == ("heading", ("Intro", "Sub"))  # MyHead is based on Heading2
    assert blocks["Body text & more"] == ("paragraph", ("Intro", "Sub"))
    assert blocks["cell A"] == ("table", ("Intro", "Sub"))
    assert blocks["Outline One"] == ("heading", ("Outline One",))
    assert blocks["del\nafter break"] == ("paragraph", ("Outline One",))
    assert "deleted" not in doc.text


def test_docx_title_style_used_without_core_properties() -> None:
    doc = extract_bytes("t.docx", make_docx([("Styled Title", "Title"), ("text", None)]))
    assert doc.title == "Styled Title"


def test_docx_without_text_is_no_text() -> None:
    doc = extract_bytes("blank.docx", make_docx([]))
    assert doc.status == "no_text"


def test_docx_macro_enabled_main_part_is_found() -> None:
    data = make_docx([("macro doc text", None)])
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for info in source.infolist():
            body = source.read(info.filename)
            if info.filename == "[Content_Types].xml":
                body = body.replace(
                    b"officedocument.wordprocessingml.document.main+xml",
                    b"ms-word.document.macroEnabled.main+xml",
                ).replace(b"/word/document.xml", b"/word/main.xml")
            name = "word/main.xml" if info.filename == "word/document.xml" else info.filename
            zf.writestr(name, body)
    doc = extract_bytes("m.docm", out.getvalue())
    assert doc.status == "ok" and doc.text == "macro doc text"

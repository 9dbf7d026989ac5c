"""Generated fixtures for the ingest tests: docx archives, minimal PDFs with a text layer,
and access to the Debian corpora (skip locally when absent, fail under CI)."""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path

import pytest

PG_HTML = Path("/usr/share/doc/postgresql-doc-15/html")
R_MANUALS = (Path("/usr/share/R/doc/manual"), Path("/usr/share/doc/r-doc-pdf/manual"))
TOKENIZER_PATHS = (
    Path("models/all-MiniLM-L6-v2-int8/tokenizer.json"),
    Path("/tmp/tokenizer.json"),
)

W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def require(path: Path | None, what: str) -> Path:
    """Return ``path`` if it exists; otherwise skip with a reason, or fail when ``CI`` is set."""
    if path is not None and path.exists():
        return path
    message = f"{what} not available ({path}); install it (see .ci/run)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def r_manual(name: str) -> Path:
    found = next((d / name for d in R_MANUALS if (d / name).exists()), None)
    return require(found, f"Debian package r-doc-pdf ({name})")


def pg_page(name: str) -> Path:
    require(PG_HTML, "Debian package postgresql-doc-15")
    return require(PG_HTML / name, f"postgresql-doc-15 page {name}")


def tokenizer_path() -> Path:
    found = next((p for p in TOKENIZER_PATHS if p.exists()), None)
    return require(found, "model tokenizer.json (run `docsidecar models fetch`)")


# -- docx ---------------------------------------------------------------------------------------
CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-'
    'officedocument.wordprocessingml.document.main+xml"/></Types>'
)
STYLES = (
    f'<?xml version="1.0" encoding="UTF-8"?><w:styles xmlns:w="{W_NS}">'
    '<w:style w:type="paragraph" w:styleId="Title"><w:name w:val="Title"/></w:style>'
    '<w:style w:type="paragraph" w:styleId="berschrift1"><w:name w:val="heading 1"/></w:style>'
    '<w:style w:type="paragraph" w:styleId="Heading2"><w:name w:val="heading 2"/></w:style>'
    '<w:style w:type="paragraph" w:styleId="MyHead"><w:name w:val="My Head"/>'
    '<w:basedOn w:val="Heading2"/></w:style></w:styles>'
)


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def docx_paragraph(text: str, style: str | None = None) -> str:
    ppr = f'<w:pPr><w:pStyle w:val="{style}"/></w:pPr>' if style else ""
    runs = "<w:tab/>".join(f'<w:r><w:t xml:space="preserve">{_xml_escape(part)}</w:t></w:r>'
                           for part in text.split("\t"))  # fmt: skip
    return f"<w:p>{ppr}{runs}</w:p>"


def document_xml(body: str) -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f'<w:document xmlns:w="{W_NS}"><w:body>{body}</w:body></w:document>'
    )


def make_docx(
    paragraphs: list[tuple[str, str | None]],
    *,
    title: str | None = None,
    extra_body: str = "",
    members: dict[str, bytes] | None = None,
) -> bytes:
    """A .docx with the given (text, styleId) paragraphs, our styles.xml and optional core title."""
    body = "".join(docx_paragraph(text, style) for text, style in paragraphs) + extra_body
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", CONTENT_TYPES)
        zf.writestr("word/document.xml", document_xml(body))
        zf.writestr("word/styles.xml", STYLES)
        if title is not None:
            zf.writestr(
                "docProps/core.xml",
                '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/'
                'metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/">'
                f"<dc:title>{_xml_escape(title)}</dc:title></cp:coreProperties>",
            )
        for name, data in (members or {}).items():
            zf.writestr(name, data)
    return buffer.getvalue()


# -- pdf ----------------------------------------------------------------------------------------
def _pdf_string(text: str) -> str:
    return "(" + text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ")"


def make_pdf(pages: list[list[str]], *, outline: Sequence[tuple[str, int]] = (), title: str = "") -> bytes:
    """A minimal PDF: each page shows its lines in Helvetica (a real text layer); an empty list
    makes a page with a drawn rectangle and no text. ``outline``: flat (title, page index)."""
    objects: list[str] = []

    def add(body: str) -> int:
        objects.append(body)
        return len(objects)

    catalog = add("")  # filled below
    pages_obj = add("")
    font = add("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    page_ids: list[int] = []
    for lines in pages:
        if lines:
            ops = ["BT", "/F1 11 Tf", "14 TL", "72 760 Td"]
            for line in lines:
                ops += [f"{_pdf_string(line)} Tj", "T*"]
            ops.append("ET")
        else:
            ops = ["0.5 g", "72 72 300 300 re", "f"]
        stream = "\n".join(ops)
        content = add(f"<< /Length {len(stream.encode('latin-1'))} >>\nstream\n{stream}\nendstream")
        page_ids.append(
            add(
                f"<< /Type /Page /Parent {pages_obj} 0 R /MediaBox [0 0 612 792] "
                f"/Resources << /Font << /F1 {font} 0 R >> >> /Contents {content} 0 R >>"
            )
        )
    kids = " ".join(f"{p} 0 R" for p in page_ids)
    objects[pages_obj - 1] = f"<< /Type /Pages /Kids [{kids}] /Count {len(page_ids)} >>"
    outline_ref = ""
    if outline:
        root = add("")
        items = [add("") for _ in outline]
        for k, (label, page) in enumerate(outline):
            links = f"/Parent {root} 0 R"
            if k > 0:
                links += f" /Prev {items[k - 1]} 0 R"
            if k + 1 < len(items):
                links += f" /Next {items[k + 1]} 0 R"
            objects[items[k] - 1] = (
                f"<< /Title {_pdf_string(label)} {links} /Dest [{page_ids[page]} 0 R /XYZ null null null] >>"
            )
        objects[root - 1] = f"<< /Type /Outlines /First {items[0]} 0 R /Last {items[-1]} 0 R /Count {len(items)} >>"
        outline_ref = f" /Outlines {root} 0 R"
    objects[catalog - 1] = f"<< /Type /Catalog /Pages {pages_obj} 0 R{outline_ref} >>"
    info = add(f"<< /Title {_pdf_string(title)} >>") if title else None
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    info_ref = f" /Info {info} 0 R" if info else ""
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root {catalog} 0 R{info_ref} >>\nstartxref\n{xref}\n%%EOF\n"
    ).encode()
    return bytes(out)


def encrypt_pdf(data: bytes, *, user_password: str, owner_password: str = "owner") -> bytes:
    """Encrypt with pypdf (RC4-128 needs no crypto library)."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.encrypt(user_password=user_password, owner_password=owner_password, algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()

"""DOCX → paragraphs with heading paths, read with ``zipfile`` and a streaming expat parser.

No python-docx: the WordprocessingML we need (paragraphs, runs, tabs/breaks, paragraph styles,
outline levels, tables, list numbering) is small, and reading it ourselves lets us enforce the
zip-bomb guard while inflating. Before anything is inflated the central directory is checked
(member count, total declared size, per-member compression ratio); while streaming, inflated
bytes are counted against the same cap. Headers, footers, footnotes and comments are not read.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from xml.parsers import expat

from backend.ingest.extract.document import (
    MIME_DOCX,
    BlockKind,
    ExtractedDocument,
    TextBuilder,
    not_ok,
)
from backend.ingest.extract.xmlstream import (
    ArchiveRefused,
    InflateBudget,
    iter_member,
    parse_stream,
)
from backend.ingest.limits import ExtractLimits

_W = ("{http://schemas.openxmlformats.org/wordprocessingml/2006/main}",
      "{http://purl.oclc.org/ooxml/wordprocessingml/main}")  # fmt: skip
_MC_FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"
_CT = "{http://schemas.openxmlformats.org/package/2006/content-types}Override"
_DC_TITLE = "{http://purl.org/dc/elements/1.1/}title"
_MAIN_TYPES = (
    "wordprocessingml.document.main+xml",
    "ms-word.document.macroEnabled.main+xml",
    "wordprocessingml.template.main+xml",
    "ms-word.template.macroEnabledTemplate.main+xml",
)
_HEADING_NAME = re.compile(r"^heading\s*([1-9])$", re.I)
_HEADING_ID = re.compile(r"^heading([1-9])$", re.I)
_TITLE_LEVEL = 0
_RUN_MARKS = {"tab": "\t", "br": "\n", "cr": "\n", "noBreakHyphen": "-"}


def _local(name: str) -> str | None:
    """Local name of a WordprocessingML element, or None for other namespaces."""
    for ns in _W:
        if name.startswith(ns):
            return name[len(ns) :]
    return None


def _attr(attrs: dict[str, str], local: str) -> str | None:
    for ns in _W:
        if ns + local in attrs:
            return attrs[ns + local]
    return None


def check_central_directory(zf: zipfile.ZipFile, limits: ExtractLimits) -> str | None:
    """The reason this archive is refused before inflating anything, or None."""
    infos = zf.infolist()
    if len(infos) > limits.docx_max_members:
        return f"zip bomb guard: {len(infos)} archive members (limit {limits.docx_max_members})"
    total = sum(info.file_size for info in infos)
    if total > limits.docx_max_uncompressed_bytes:
        return f"zip bomb guard: {total} bytes declared uncompressed (limit {limits.docx_max_uncompressed_bytes})"
    for info in infos:
        if info.flag_bits & 0x1:
            return "encrypted archive member; password-protected documents are not supported"
        if info.file_size > limits.docx_ratio_min_bytes:
            ratio = info.file_size / max(info.compress_size, 1)
            if ratio > limits.docx_max_ratio:
                return (
                    f"zip bomb guard: member {info.filename!r} compresses {ratio:.0f}:1 "
                    f"(limit {limits.docx_max_ratio:.0f}:1)"
                )
    return None


def _main_part(zf: zipfile.ZipFile, budget: InflateBudget) -> str | None:
    names = set(zf.namelist())
    found: list[str] = []
    if "[Content_Types].xml" in names:

        def start(name: str, attrs: dict[str, str]) -> None:
            if name == _CT and attrs.get("ContentType", "").endswith(_MAIN_TYPES):
                found.append(attrs.get("PartName", "").lstrip("/"))

        parse_stream(iter_member(zf, "[Content_Types].xml", budget), start, lambda _n: None)
    for part in [*found, "word/document.xml"]:
        if part in names:
            return part
    return None


class _StyleReader:
    """Collects heading levels and ``basedOn`` links from ``styles.xml``."""

    def __init__(self) -> None:
        self.direct: dict[str, int] = {}
        self.based_on: dict[str, str] = {}
        self.current = ""

    def start(self, name: str, attrs: dict[str, str]) -> None:
        local = _local(name)
        value = (_attr(attrs, "val") or "").strip()
        if local == "style":
            self.current = _attr(attrs, "styleId") or ""
        elif not self.current:
            return
        elif local == "name":
            match = _HEADING_NAME.match(value)
            if match:
                self.direct.setdefault(self.current, int(match.group(1)))
            elif value.lower() == "title":
                self.direct[self.current] = _TITLE_LEVEL
        elif local == "basedOn":
            self.based_on[self.current] = value
        elif local == "outlineLvl" and value.isdigit() and int(value) < 9:
            self.direct.setdefault(self.current, int(value) + 1)


def _heading_styles(zf: zipfile.ZipFile, part: str, budget: InflateBudget) -> dict[str, int]:
    """styleId → heading level (0 for the Title style), following ``basedOn`` chains."""
    path = part.rsplit("/", 1)[0] + "/styles.xml" if "/" in part else "styles.xml"
    if path not in set(zf.namelist()):
        return {}
    reader = _StyleReader()
    parse_stream(iter_member(zf, path, budget), reader.start, lambda _n: None)
    direct, based_on = reader.direct, reader.based_on
    levels: dict[str, int] = {}
    for style in {*direct, *based_on}:
        cursor: str | None = style
        for _ in range(12):
            if cursor is None or cursor in direct:
                break
            cursor = based_on.get(cursor)
        if cursor is not None and cursor in direct:
            levels[style] = direct[cursor]
    return levels


def _core_title(zf: zipfile.ZipFile, budget: InflateBudget) -> str | None:
    if "docProps/core.xml" not in set(zf.namelist()):
        return None
    parts: list[str] = []
    inside = [False]

    def start(name: str, _attrs: dict[str, str]) -> None:
        inside[0] = name == _DC_TITLE

    def end(_name: str) -> None:
        inside[0] = False

    def data(text: str) -> None:
        if inside[0]:
            parts.append(text)

    parse_stream(iter_member(zf, "docProps/core.xml", budget), start, end, data)
    return " ".join("".join(parts).split()) or None


@dataclass
class _Paragraph:
    parts: list[str] = field(default_factory=list)
    style: str | None = None
    outline: int | None = None
    listed: bool = False


class _Body:
    """Streaming handlers for ``document.xml``."""

    def __init__(self, styles: dict[str, int]) -> None:
        self.styles = styles
        self.out = TextBuilder()
        self.stack: list[_Paragraph] = []
        self.path: list[tuple[int, str]] = []
        self.title: str | None = None
        self.in_text = False
        self.tables = 0
        self.fallback = 0

    def start(self, name: str, attrs: dict[str, str]) -> None:
        if name == _MC_FALLBACK:
            self.fallback += 1
        local = _local(name)
        if local is None or self.fallback:
            return
        para = self.stack[-1] if self.stack else None
        if local == "p":
            self.stack.append(_Paragraph())
        elif local == "tbl":
            self.tables += 1
        elif para is None:
            return
        elif local == "t":
            self.in_text = True
        elif local in _RUN_MARKS:
            para.parts.append(_RUN_MARKS[local])
        elif local == "pStyle":
            para.style = _attr(attrs, "val")
        elif local == "outlineLvl":
            value = _attr(attrs, "val") or "9"
            para.outline = int(value) + 1 if value.isdigit() and int(value) < 9 else None
        elif local == "numPr":
            para.listed = True

    def end(self, name: str) -> None:
        if name == _MC_FALLBACK:
            self.fallback -= 1
            return
        local = _local(name)
        if local is None or self.fallback:
            return
        if local == "t":
            self.in_text = False
        elif local == "tbl":
            self.tables -= 1
        elif local == "p" and self.stack:
            self._paragraph(self.stack.pop())

    def data(self, text: str) -> None:
        if self.in_text and self.stack and not self.fallback:
            self.stack[-1].parts.append(text)

    def _paragraph(self, para: _Paragraph) -> None:
        text = "".join(para.parts).strip()
        if not text:
            return
        level = para.outline
        if level is None and para.style is not None:
            level = self.styles.get(para.style)
            if level is None and (match := _HEADING_ID.match(para.style)):
                level = int(match.group(1))
        if level == _TITLE_LEVEL:
            self.title = self.title or " ".join(text.split())
            self.out.add(text, "heading", heading_path=(" ".join(text.split()),))
            return
        if level is not None:
            heading = " ".join(text.split())
            while self.path and self.path[-1][0] >= level:
                self.path.pop()
            self.path.append((level, heading))
            self.out.add(text, "heading", heading_path=tuple(t for _, t in self.path))
            return
        kind: BlockKind = "table" if self.tables else "list_item" if para.listed else "paragraph"
        self.out.add(text, kind, heading_path=tuple(t for _, t in self.path))


def extract_docx(data: bytes, limits: ExtractLimits) -> ExtractedDocument:
    """Extract a .docx held in memory; never raises for bad content."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            refused = check_central_directory(zf, limits)
            if refused:
                return not_ok(MIME_DOCX, "failed", refused)
            budget = InflateBudget(limits.docx_max_uncompressed_bytes)
            part = _main_part(zf, budget)
            if part is None:
                return not_ok(MIME_DOCX, "failed", "not a Word document: no main document part")
            body = _Body(_heading_styles(zf, part, budget))
            parse_stream(iter_member(zf, part, budget), body.start, body.end, body.data)
            title = _core_title(zf, budget) or body.title
    except ArchiveRefused as exc:
        return not_ok(MIME_DOCX, "failed", str(exc))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
        return not_ok(MIME_DOCX, "failed", f"corrupt or truncated docx: {exc}")
    except (expat.ExpatError, zlib.error, ValueError, RuntimeError, NotImplementedError) as exc:
        return not_ok(MIME_DOCX, "failed", f"corrupt docx: {type(exc).__name__}: {exc}")
    return body.out.build(MIME_DOCX, title=title, empty_reason="Word document contains no text")

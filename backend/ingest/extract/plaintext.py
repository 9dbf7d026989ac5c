"""Plain text and Markdown: the canonical text is the decoded file with newlines normalised.

Blocks index straight into that text (no rebuilding), so a 5 MB single-line file costs one
regex pass. Markdown gets a light line-based structure pass (ATX/setext headings, fenced code,
list items, YAML front matter); inline markup stays in the text as the author wrote it.
"""

from __future__ import annotations

import re

from backend.ingest.extract.document import (
    MIME_MARKDOWN,
    MIME_TEXT,
    Block,
    BlockKind,
    ExtractedDocument,
)
from backend.ingest.extract.textdecode import Decoded

_LINE = re.compile(r"(?m)^.*$")
_PARAGRAPH = re.compile(r"(?m)^[ \t]*\S.*(?:\n[ \t]*\S.*)*")
_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_LIST_ITEM = re.compile(r"^ {0,3}(?:[-*+]|\d{1,9}[.)])[ \t]+\S")
_INLINE = re.compile(r"!?\[([^\]]*)\]\([^)]*\)|[*_`]+")
_FRONT_TITLE = re.compile(r"(?m)^title:[ \t]*['\"]?(.*?)['\"]?[ \t]*$")


def normalise_newlines(text: str) -> str:
    if "\r" not in text:
        return text
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def extract_plain(decoded: Decoded) -> ExtractedDocument:
    """Paragraphs are runs of non-blank lines."""
    text = normalise_newlines(decoded.text)
    blocks = []
    for match in _PARAGRAPH.finditer(text):
        start, end = _trimmed(text, match.start(), match.end())
        if end > start:
            blocks.append(Block(start, end, "paragraph"))
    return _result(MIME_TEXT, text, blocks, None, decoded)


def _result(mime: str, text: str, blocks: list[Block], title: str | None, decoded: Decoded) -> ExtractedDocument:
    if not blocks:
        return ExtractedDocument(mime=mime, status="no_text", reason="file contains no text")
    return ExtractedDocument(
        mime=mime,
        status="ok",
        text=text,
        blocks=tuple(blocks),
        title=title,
        encoding=decoded.encoding,
        warnings=decoded.warnings,
    )


def clean_heading(raw: str) -> str:
    """Heading text for display: links reduced to their label, emphasis markers removed."""
    return " ".join(_INLINE.sub(lambda m: m.group(1) or "", raw).split())


class _MarkdownBlocks:
    def __init__(self, text: str) -> None:
        self.text = text
        self.blocks: list[Block] = []
        self.path: list[tuple[int, str]] = []
        self.title: str | None = None
        self.open_start: int | None = None
        self.open_end = 0
        self.open_kind: BlockKind = "paragraph"

    def heading_path(self) -> tuple[str, ...]:
        return tuple(title for _, title in self.path)

    def flush(self) -> None:
        if self.open_start is not None:
            self.emit(self.open_start, self.open_end, self.open_kind)
        self.open_start = None

    def emit(self, start: int, end: int, kind: BlockKind) -> None:
        start, end = _trimmed(self.text, start, end)
        if end > start:
            self.blocks.append(Block(start, end, kind, None, self.heading_path()))

    def heading(self, level: int, title: str, start: int, end: int) -> None:
        title = clean_heading(title)
        if not title:
            self.emit(start, end, "paragraph")
            return
        while self.path and self.path[-1][0] >= level:
            self.path.pop()
        self.path.append((level, title))
        if level == 1 and self.title is None:
            self.title = title
        self.emit(start, end, "heading")

    def line(self, start: int, end: int, kind: BlockKind) -> None:
        """Extend the open block with this line, or open a new one."""
        if self.open_start is None or kind == "list_item":
            self.flush()
            self.open_start, self.open_kind = start, kind
        self.open_end = end


def _front_matter(text: str, lines: list[tuple[int, int]], md: _MarkdownBlocks) -> int:
    """Emit a YAML front-matter block; return the index of the first line after it."""
    if not lines or text[lines[0][0] : lines[0][1]].rstrip() != "---":
        return 0
    for index in range(1, min(len(lines), 200)):
        start, end = lines[index]
        if text[start:end].rstrip() in {"---", "..."}:
            md.emit(lines[0][0], end, "meta")
            found = _FRONT_TITLE.search(text, lines[0][1], start)
            if found and found.group(1).strip():
                md.title = found.group(1).strip()
            return index + 1
    return 0


def extract_markdown(decoded: Decoded) -> ExtractedDocument:
    text = normalise_newlines(decoded.text)
    lines = [(m.start(), m.end()) for m in _LINE.finditer(text) if m.start() < len(text)]
    md = _MarkdownBlocks(text)
    index = _front_matter(text, lines, md)
    front_title = md.title
    md.title = None
    fence: str | None = None
    fence_start = 0
    while index < len(lines):
        start, end = lines[index]
        index += 1
        line = text[start:end]
        if fence is not None:
            if line.strip().startswith(fence):
                md.emit(fence_start, end, "code")
                fence = None
            continue
        opened = _FENCE.match(line)
        if opened:
            md.flush()
            fence, fence_start = opened.group(1), start
            continue
        if not line.strip():
            md.flush()
            continue
        atx = _ATX.match(line)
        if atx:
            md.flush()
            md.heading(len(atx.group(1)), atx.group(2) or "", start, end)
            continue
        setext = _SETEXT.match(line)
        if setext and md.open_start is not None and md.open_kind == "paragraph":
            head_start = md.open_start
            md.open_start = None
            level = 1 if setext.group(1)[0] == "=" else 2
            md.heading(level, text[head_start:start], head_start, end)
            continue
        md.line(start, end, "list_item" if _LIST_ITEM.match(line) else "paragraph")
    if fence is not None:
        md.emit(fence_start, len(text), "code")
    md.flush()
    return _result(MIME_MARKDOWN, text, md.blocks, front_title or md.title, decoded)

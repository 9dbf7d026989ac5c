"""HTML → visible text with title, heading path and paragraph blocks (stdlib ``html.parser``).

Dropped as noise: ``script``/``style``/``noscript``/``template``/``svg``/form controls, ``nav``
elements, ``role="navigation"`` and elements whose class names a navigation bar (e.g. the
``navheader``/``navfooter`` of DocBook output such as the PostgreSQL manual). ``<title>`` becomes
the title (else the first ``h1``); ``h1``-``h6`` drive the heading path; block elements end a
paragraph; ``<pre>`` keeps its line breaks; whitespace elsewhere collapses as a browser would.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from backend.ingest.extract.document import MIME_HTML, BlockKind, ExtractedDocument, TextBuilder
from backend.ingest.extract.textdecode import Decoded, decode_text

_SKIP_TAGS = frozenset(
    {"script", "style", "noscript", "template", "svg", "iframe", "object", "canvas", "select",
     "button", "nav", "datalist", "map"}
)  # fmt: skip
_NOISE_CLASSES = frozenset(
    {"navheader", "navfooter", "navbar", "navigation", "breadcrumb", "breadcrumbs", "skip-link",
     "skiplink", "cookie-banner", "cookie-notice", "visually-hidden", "sr-only"}
)  # fmt: skip
_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
     "source", "track", "wbr"}
)  # fmt: skip
_BLOCK_TAGS = frozenset(
    {"p", "div", "ul", "ol", "li", "dl", "dt", "dd", "table", "thead", "tbody", "tfoot", "tr",
     "caption", "blockquote", "section", "article", "main", "header", "footer", "aside",
     "address", "figure", "figcaption", "details", "summary", "hr", "form", "fieldset",
     "legend", "body", "html", "center", "dialog"}
)  # fmt: skip
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_CELL_TAGS = frozenset({"td", "th"})
_SPACES = re.compile(r"\s+")
_AROUND_NEWLINE = re.compile(r"[ \t]*\n[ \t]*")
_INLINE_SPACES = re.compile(r"[^\S\n]{2,}")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_:.-]+)""", re.I)


def _is_noise(tag: str, attrs: list[tuple[str, str | None]]) -> bool:
    if tag in _SKIP_TAGS:
        return True
    for name, value in attrs:
        if value is None:
            continue
        if name == "role" and value.strip().lower() == "navigation":
            return True
        if name == "class" and _NOISE_CLASSES.intersection(value.lower().split()):
            return True
        if name == "aria-hidden" and value.strip().lower() == "true":
            return True
    return False


class _VisibleText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out = TextBuilder()
        self.title_parts: list[str] | None = None
        self.title: str | None = None
        self.first_h1: str | None = None
        self.skip_tag: str | None = None
        self.skip_depth = 0
        self.parts: list[str] = []
        self.kind: BlockKind = "paragraph"
        self.pre_depth = 0
        self.heading_level = 0
        self.path: list[tuple[int, str]] = []

    # -- block assembly -------------------------------------------------------------------
    def _block_text(self) -> str:
        raw = "".join(self.parts)
        self.parts = []
        if self.kind == "code":
            return raw.strip("\n")
        return _AROUND_NEWLINE.sub("\n", _INLINE_SPACES.sub(" ", raw)).strip()

    def flush(self, next_kind: BlockKind = "paragraph") -> None:
        text = self._block_text()
        if self.heading_level:
            self._heading(text)
        elif text:
            self.out.add(text, self.kind, heading_path=tuple(t for _, t in self.path))
        self.kind = next_kind

    def _heading(self, text: str) -> None:
        level, self.heading_level = self.heading_level, 0
        text = " ".join(text.split())
        if not text:
            return
        while self.path and self.path[-1][0] >= level:
            self.path.pop()
        self.path.append((level, text))
        if level == 1 and self.first_h1 is None:
            self.first_h1 = text
        self.out.add(text, "heading", heading_path=tuple(t for _, t in self.path))

    # -- parser callbacks -----------------------------------------------------------------
    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.skip_tag is not None:
            if tag == self.skip_tag:
                self.skip_depth += 1
            return
        if tag == "title" and self.title is None:
            self.title_parts = []
        elif tag not in _VOID and _is_noise(tag, attrs):
            self.skip_tag, self.skip_depth = tag, 1
        else:
            self._structure_start(tag)

    def _structure_start(self, tag: str) -> None:
        if tag in _HEADINGS and not self.pre_depth:
            self.flush()
            self.heading_level = _HEADINGS[tag]
        elif tag == "pre" and not self.heading_level:
            if self.pre_depth == 0:
                self.flush("code")
            self.pre_depth += 1
        elif tag == "br":
            self.parts.append("\n")
        elif self.heading_level or self.pre_depth:
            self.parts.append("" if self.pre_depth else " ")
        elif tag == "li":
            self.flush("list_item")
        elif tag == "tr":
            self.flush("table")
        elif tag in _CELL_TAGS:
            self.parts.append(" ")
        elif tag in _BLOCK_TAGS:
            self.flush()

    def handle_endtag(self, tag: str) -> None:
        if self.skip_tag is not None:
            if tag == self.skip_tag:
                self.skip_depth -= 1
                if self.skip_depth == 0:
                    self.skip_tag = None
            return
        if tag == "title" and self.title_parts is not None:
            self.title = " ".join("".join(self.title_parts).split()) or None
            self.title_parts = None
        elif tag in _HEADINGS and self.heading_level:
            self.flush()
        elif tag == "pre" and self.pre_depth:
            self.pre_depth -= 1
            if self.pre_depth == 0:
                self.flush()
        elif self.heading_level or self.pre_depth:
            self.parts.append("" if self.pre_depth else " ")
        elif tag in _CELL_TAGS:
            self.parts.append(" ")
        elif tag in _BLOCK_TAGS or tag in {"li", "tr"}:
            self.flush()

    def handle_data(self, data: str) -> None:
        if self.title_parts is not None:
            self.title_parts.append(data)
        elif self.skip_tag is None:
            self.parts.append(data if self.pre_depth else _SPACES.sub(" ", data))


def declared_charset(data: bytes) -> str | None:
    """The charset a ``<meta>`` tag declares within the first 2 KiB, if any."""
    found = _META_CHARSET.search(data[:2048])
    return found.group(1).decode("ascii", errors="replace") if found else None


def extract_html(data: bytes) -> ExtractedDocument:
    decoded = decode_text(data, declared=declared_charset(data))
    if decoded is None:
        return ExtractedDocument(mime=MIME_HTML, status="unsupported", reason="HTML file is not decodable as text")
    return extract_html_text(decoded)


def extract_html_text(decoded: Decoded) -> ExtractedDocument:
    parser = _VisibleText()
    parser.feed(decoded.text.replace("\r\n", "\n").replace("\r", "\n"))
    parser.close()
    parser.flush()
    return parser.out.build(
        MIME_HTML,
        title=parser.title or parser.first_h1,
        encoding=decoded.encoding,
        warnings=decoded.warnings,
        empty_reason="HTML page has no visible text",
    )

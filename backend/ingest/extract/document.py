"""The result of extracting one file: canonical text plus structure blocks that index into it.

``ExtractedDocument.text`` is the canonical full text of the document; search highlights and
cites with character offsets into it (``Block.start``/``Block.end``, and the chunker's
``Chunk.char_start``/``char_end``). Invariants (checked by the tests for every extractor):

* blocks are sorted, non-overlapping, non-empty, and each starts and ends on a non-whitespace
  character of ``text``;
* every non-whitespace character of ``text`` lies inside some block;
* ``status == "ok"`` implies ``text`` has at least one non-whitespace character.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

EXTRACT_VERSION = 1
"""Bump when extraction output changes for the same input, so stored documents can be
re-extracted; the pipeline stores it next to each document."""

Status = Literal["ok", "unsupported", "no_text", "failed"]
BlockKind = Literal["heading", "paragraph", "list_item", "code", "table", "meta"]

MIME_TEXT = "text/plain"
MIME_MARKDOWN = "text/markdown"
MIME_HTML = "text/html"
MIME_PDF = "application/pdf"
MIME_DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
SUPPORTED_MIMES = frozenset({MIME_TEXT, MIME_MARKDOWN, MIME_HTML, MIME_PDF, MIME_DOCX})


@dataclass(frozen=True, slots=True)
class Block:
    """A structural unit (heading, paragraph, list item, code block, table row) of the text.

    ``page`` is 1-based for paginated formats (PDF), else ``None``. ``heading_path`` holds the
    titles of the enclosing headings, outermost first; a heading block's path ends with itself.
    """

    start: int
    end: int
    kind: BlockKind
    page: int | None = None
    heading_path: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ExtractedDocument:
    """What one extraction produced. Never raised: failures are values with a human reason."""

    mime: str
    status: Status
    text: str = ""
    blocks: tuple[Block, ...] = ()
    title: str | None = None
    reason: str | None = None
    pages: int | None = None
    encoding: str | None = None
    warnings: tuple[str, ...] = field(default=())
    sha256: str | None = None
    """sha256 of the bytes this result was extracted from (set by ``extract_file``), so the
    pipeline can record exactly which content its chunks came from."""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def not_ok(mime: str, status: Status, reason: str, *, pages: int | None = None) -> ExtractedDocument:
    """A document with no text: ``unsupported``, ``no_text`` or ``failed`` plus the reason."""
    assert status != "ok"
    return ExtractedDocument(mime=mime, status=status, reason=reason, pages=pages)


class TextBuilder:
    """Assembles canonical text from blocks, separating blocks with a blank line.

    Each ``add`` strips the block text; empty blocks are dropped. Offsets are computed as the text
    is built, so the result satisfies the invariants in the module docstring by construction.
    """

    SEPARATOR = "\n\n"

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._blocks: list[Block] = []
        self._length = 0

    def add(
        self,
        text: str,
        kind: BlockKind,
        *,
        page: int | None = None,
        heading_path: tuple[str, ...] = (),
    ) -> bool:
        """Append one block; return False when it was empty after stripping."""
        body = text.strip()
        if not body:
            return False
        if self._parts:
            self._parts.append(self.SEPARATOR)
            self._length += len(self.SEPARATOR)
        start = self._length
        self._parts.append(body)
        self._length += len(body)
        self._blocks.append(Block(start, self._length, kind, page, heading_path))
        return True

    @property
    def length(self) -> int:
        return self._length

    def build(
        self,
        mime: str,
        *,
        title: str | None = None,
        pages: int | None = None,
        encoding: str | None = None,
        warnings: tuple[str, ...] = (),
        empty_reason: str = "no text found",
    ) -> ExtractedDocument:
        """The finished document; ``no_text`` with ``empty_reason`` when nothing was added."""
        if not self._blocks:
            return ExtractedDocument(mime=mime, status="no_text", reason=empty_reason, pages=pages, title=title)
        return ExtractedDocument(
            mime=mime,
            status="ok",
            text="".join(self._parts),
            blocks=tuple(self._blocks),
            title=title,
            pages=pages,
            encoding=encoding,
            warnings=warnings,
        )

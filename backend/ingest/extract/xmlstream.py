"""Safe, streaming XML for archive members: bounded inflation and no DTDs or entities.

``iter_member`` inflates one zip member in 64 KiB pieces and charges every piece to a shared
:class:`InflateBudget`, so a member whose central-directory sizes lie is still stopped at the
cap. ``parse_stream`` feeds pieces to expat with a document type declaration or any entity
declaration refused outright (OOXML never uses them; billion-laughs and external-entity attacks
need them).
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from xml.parsers import expat

_PIECE = 64 * 1024


class ArchiveRefused(Exception):
    """The archive or one of its XML parts violates a safety rule; the message says which."""


class InflateBudget:
    """Bytes that may still be inflated from one archive."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def spend(self, count: int) -> None:
        self.used += count
        if self.used > self.limit:
            raise ArchiveRefused(f"zip bomb guard: more than {self.limit} bytes inflated while reading")


def iter_member(zf: zipfile.ZipFile, name: str, budget: InflateBudget) -> Iterator[bytes]:
    with zf.open(name) as member:
        while piece := member.read(_PIECE):
            budget.spend(len(piece))
            yield piece


def _refuse_dtd(*_args: Any) -> int:
    raise ArchiveRefused("XML part declares a DTD or entities; refused")


def parse_stream(
    pieces: Iterable[bytes],
    start: Callable[[str, dict[str, str]], None],
    end: Callable[[str], None],
    data: Callable[[str], None] | None = None,
) -> None:
    """Parse with namespace-qualified names ``"{uri}local"``; handler errors propagate."""
    parser = expat.ParserCreate(namespace_separator="}")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_dtd
    parser.ExternalEntityRefHandler = _refuse_dtd
    parser.buffer_text = True
    parser.StartElementHandler = lambda name, attrs: start(_q(name), _qualify(attrs))
    parser.EndElementHandler = lambda name: end(_q(name))
    if data is not None:
        parser.CharacterDataHandler = data
    for piece in pieces:
        parser.Parse(piece, False)
    parser.Parse(b"", True)


def _q(name: str) -> str:
    return "{" + name if "}" in name else name


def _qualify(attrs: dict[str, str]) -> dict[str, str]:
    return {_q(key): value for key, value in attrs.items()}

"""RAG context assembly (pure functions): ranked chunks → cited passages within a token budget.

1. :func:`merge_passages` groups the ranked chunks by document and joins chunks with consecutive
   ordinals into one passage. Consecutive chunks overlap (the chunker repeats ~30 tokens), and
   since ``chunk.text == document_text[char_start:char_end]`` the overlap is cut exactly by
   offsets. Duplicates are removed: the same chunk twice, or the same text in two documents (a
   copied file) — the better-ranked copy stays. A passage ranks by its best chunk.
2. :func:`assemble` takes passages best first and renders each as ``[n] title (location)`` plus
   its text while the token count stays within the budget; a passage that does not fit is
   replaced by the best of its chunks that does, else skipped. The token count of the returned
   ``context`` string (the same counter) never exceeds the budget.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

CountTokens = Callable[[str], int]
SEPARATOR = "\n\n"


@dataclass(frozen=True, slots=True)
class ContextChunk:
    chunk_id: int
    document_id: str
    ordinal: int
    text: str
    char_start: int
    char_end: int
    page: int | None
    heading_path: str
    score: float
    title: str
    path: str | None = None


@dataclass(frozen=True, slots=True)
class Passage:
    document_id: str
    title: str
    path: str | None
    chunks: tuple[ContextChunk, ...]
    text: str
    score: float

    @property
    def char_start(self) -> int:
        return self.chunks[0].char_start

    @property
    def char_end(self) -> int:
        return max(c.char_end for c in self.chunks)

    @property
    def pages(self) -> list[int]:
        return sorted({c.page for c in self.chunks if c.page is not None})

    @property
    def heading_path(self) -> str:
        return self.chunks[0].heading_path

    def location(self) -> str:
        parts = []
        pages = self.pages
        if pages:
            parts.append(f"p. {pages[0]}" if len(pages) == 1 else f"pp. {pages[0]}-{pages[-1]}")
        if self.heading_path:
            parts.append(self.heading_path)
        return "; ".join(parts)


def join_texts(chunks: Sequence[ContextChunk]) -> str:
    """Text of consecutive chunks (sorted by offset) with their overlaps removed."""
    out = chunks[0].text
    end = chunks[0].char_end
    for c in chunks[1:]:
        if c.char_end <= end:
            continue  # contained in what we have
        if c.char_start <= end:
            out += c.text[end - c.char_start :]
        else:
            out += "\n" + c.text
        end = c.char_end
    return out


def merge_passages(ranked: Sequence[ContextChunk]) -> list[Passage]:
    """Passages from ``ranked`` chunks (best first), best passage first."""
    seen_ids: set[int] = set()
    seen_text: set[str] = set()
    kept: list[ContextChunk] = []
    for c in ranked:
        digest = hashlib.sha256(c.text.strip().encode("utf-8")).hexdigest()
        if c.chunk_id in seen_ids or digest in seen_text:
            continue
        seen_ids.add(c.chunk_id)
        seen_text.add(digest)
        kept.append(c)
    by_doc: dict[str, list[ContextChunk]] = {}
    for c in kept:
        by_doc.setdefault(c.document_id, []).append(c)
    passages: list[Passage] = []
    for doc_chunks in by_doc.values():
        doc_chunks.sort(key=lambda c: c.ordinal)
        run: list[ContextChunk] = [doc_chunks[0]]
        for c in doc_chunks[1:]:
            if c.ordinal == run[-1].ordinal + 1:
                run.append(c)
            else:
                passages.append(_passage(run))
                run = [c]
        passages.append(_passage(run))
    passages.sort(key=lambda p: (-p.score, p.document_id, p.char_start))
    return passages


def _passage(run: list[ContextChunk]) -> Passage:
    first = run[0]
    return Passage(first.document_id, first.title, first.path, tuple(run), join_texts(run), max(c.score for c in run))


def render(n: int, passage: Passage) -> str:
    loc = passage.location()
    header = f"[{n}] {passage.title}" + (f" ({loc})" if loc else "")
    return f"{header}\n{passage.text}"


@dataclass(frozen=True, slots=True)
class AssembledContext:
    context: str
    citations: list[dict[str, Any]]
    tokens: int
    skipped: int


def _citation(n: int, p: Passage) -> dict[str, Any]:
    return {
        "n": n,
        "document_id": p.document_id,
        "title": p.title,
        "path": p.path,
        "pages": p.pages,
        "heading_path": p.heading_path.split(" > ") if p.heading_path else [],
        "char_start": p.char_start,
        "char_end": p.char_end,
        "chunk_ids": [c.chunk_id for c in p.chunks],
        "score": p.score,
        "text": p.text,
    }


def assemble(passages: Sequence[Passage], token_budget: int, count_tokens: CountTokens) -> AssembledContext:
    """Greedy packing of ``passages`` (best first) into at most ``token_budget`` tokens."""
    sep_cost = count_tokens(SEPARATOR)
    blocks: list[str] = []
    citations: list[dict[str, Any]] = []
    used, skipped = 0, 0
    for passage in passages:
        options = [passage]
        if len(passage.chunks) > 1:
            options += [_passage([c]) for c in sorted(passage.chunks, key=lambda c: -c.score)]
        for option in options:
            block = render(len(blocks) + 1, option)
            cost = count_tokens(block) + (sep_cost if blocks else 0)
            if used + cost <= token_budget:
                blocks.append(block)
                citations.append(_citation(len(blocks), option))
                used += cost
                break
        else:
            skipped += 1
    context = SEPARATOR.join(blocks)
    while blocks and count_tokens(context) > token_budget:  # a tokenizer that is not additive
        blocks.pop()
        citations.pop()
        context = SEPARATOR.join(blocks)
    return AssembledContext(context, citations, count_tokens(context) if blocks else 0, skipped)

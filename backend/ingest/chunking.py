"""Token-aware chunking of an :class:`ExtractedDocument` (pure functions).

Each chunk is a slice of the document's canonical text (``chunk.text ==
doc.text[chunk.char_start:chunk.char_end]``) that stays within one page, carries the heading path
of the blocks it covers (their longest common prefix) and fits the model: ``token_count`` plus
the tokenizer's special tokens is at most ``ChunkingConfig.max_tokens``.

How cuts are chosen. Every gap between two tokens is a candidate cut with a strength: section
(a heading starts or the heading path changes) > paragraph (block boundary) > sentence > line >
word (whitespace) > token (no whitespace: last resort) > char (inside one over-long token: very
last resort). For each chunk the cut is picked in the window ``[min_tokens, budget]`` by
``weight(strength) - 2 * |tokens - target| / target``, so a strong boundary near the target
wins. Without whitespace between two characters only CJK text is cut softly (between ideographs).
The next chunk starts ``overlap_tokens`` before the cut at a word boundary, except after a
section cut. Chunks never split inside a whitespace-delimited word unless the text offers no
other cut within the token/char budget; such chunks have ``hard_split=True`` and their token
count is verified by re-tokenising them alone.

Cost: every block is tokenised once (in pieces of <= 64K characters, so memory stays bounded
on a 5 MB line); cut selection is vectorised per chunk over a window of ~150 tokens; linear.
Assumes, like BERT WordPiece, that tokens never span whitespace, so a chunk cut at whitespace
tokenises alone exactly as inside its block.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt
from tokenizers import Tokenizer

from backend.ingest.extract.document import Block, ExtractedDocument

CHUNK_VERSION = 1
"""Bump when chunk boundaries change for the same text (stored chunks are then rebuilt)."""

Ints = npt.NDArray[np.int64]
CHAR, TOKEN, WORD, LINE, SENTENCE, PARAGRAPH, SECTION, END = range(8)
BOUNDARY_NAMES = ("char", "token", "word", "line", "sentence", "paragraph", "section", "end")
_WEIGHTS = np.array([-8.0, -4.0, 0.0, 0.5, 1.0, 2.0, 3.0, 5.0])
_PENALTY = 2.0
_PIECE = 65_536
_WHITESPACE = np.array([c for c in range(0x3001) if chr(c).isspace()], dtype=np.uint32)
_SENTENCE_END = np.array([ord(c) for c in ".!?\u2026\u3002\uff01\uff1f"], dtype=np.uint32)
_CLOSERS = np.array([ord(c) for c in "\"')]\u201d\u2019\u00bb"], dtype=np.uint32)
_CJK_SENTENCE_END = np.array([ord(c) for c in "\u3002\uff01\uff1f"], dtype=np.uint32)


class SpanTokenizer(Protocol):
    """What the chunker needs from the model tokenizer."""

    @property
    def special_tokens(self) -> int:
        """Tokens the model adds to every input (2 for BERT: [CLS] and [SEP])."""
        ...

    def spans(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        """Character spans of the tokens of each text, without special tokens."""
        ...


class HFSpanTokenizer:
    """:class:`SpanTokenizer` over a ``tokenizers.Tokenizer`` (copied, truncation/padding off)."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self._tokenizer = Tokenizer.from_str(tokenizer.to_str())
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        self._special = self._tokenizer.num_special_tokens_to_add(False)

    @classmethod
    def from_file(cls, path: Path) -> HFSpanTokenizer:
        return cls(Tokenizer.from_file(str(path)))

    @property
    def special_tokens(self) -> int:
        return self._special

    def spans(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        encodings = self._tokenizer.encode_batch(list(texts), add_special_tokens=False)
        return [encoding.offsets for encoding in encodings]


@dataclass(frozen=True, slots=True)
class ChunkingConfig:
    """Chunk sizes in model tokens. Defaults: ~200 tokens, 15 % overlap, MiniLM's 256 max."""

    target_tokens: int = 200
    overlap_tokens: int = 30
    max_tokens: int = 256
    """Model maximum sequence length, special tokens included."""
    min_tokens: int | None = None
    """Shortest chunk worth cutting at a good boundary (default: half the target)."""
    max_chars: int = 4000
    """Hard cap on characters per chunk (bounds pathological tokens such as [UNK] runs)."""

    def __post_init__(self) -> None:
        if not 0 < self.target_tokens < self.max_tokens:
            raise ValueError("need 0 < target_tokens < max_tokens")
        if not 0 <= self.overlap_tokens < self.target_tokens // 2:
            raise ValueError("need 0 <= overlap_tokens < target_tokens / 2")
        if self.max_chars < 64:
            raise ValueError("max_chars must be at least 64")


@dataclass(frozen=True, slots=True)
class Chunk:
    """One embeddable slice of a document."""

    ordinal: int
    text: str
    char_start: int
    char_end: int
    page: int | None
    heading_path: tuple[str, ...]
    token_count: int
    sha256: str
    boundary: str
    """How the chunk's end was cut (one of ``BOUNDARY_NAMES``)."""
    hard_split: bool
    """True when a start or end cut lies inside a whitespace-delimited word (last resort)."""


def chunk_document(
    doc: ExtractedDocument, tokenizer: SpanTokenizer, config: ChunkingConfig | None = None
) -> list[Chunk]:
    """Chunks of ``doc.text`` in text order; ``[]`` when the document has no text."""
    config = config or ChunkingConfig()
    budget = config.max_tokens - tokenizer.special_tokens
    if config.target_tokens > budget:
        raise ValueError(f"target_tokens {config.target_tokens} exceeds the budget {budget}")
    chunks: list[Chunk] = []
    for page, blocks in _segments(doc.text, doc.blocks):
        _Segment(doc.text, page, blocks, tokenizer, config, budget).run(chunks)
    return chunks


def _segments(text: str, blocks: Sequence[Block]) -> list[tuple[int | None, list[Block]]]:
    """Blocks cleaned (clamped, trimmed, gaps with text filled) and grouped by page."""
    clean: list[Block] = []
    cursor = 0
    for block in sorted(blocks, key=lambda b: b.start):
        start, end = _trim(text, max(block.start, cursor), min(block.end, len(text)))
        if start >= end:
            continue
        gap = _trim(text, cursor, start)
        if gap[0] < gap[1]:
            clean.append(Block(*gap, "paragraph", block.page, block.heading_path))
        clean.append(Block(start, end, block.kind, block.page, block.heading_path))
        cursor = end
    tail = _trim(text, cursor, len(text))
    if tail[0] < tail[1]:
        last = clean[-1] if clean else Block(0, 0, "paragraph")
        clean.append(Block(*tail, "paragraph", last.page, last.heading_path))
    groups: list[tuple[int | None, list[Block]]] = []
    for block in clean:
        if groups and groups[-1][0] == block.page:
            groups[-1][1].append(block)
        else:
            groups.append((block.page, [block]))
    return groups


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    stripped = text[start:end]
    left = len(stripped) - len(stripped.lstrip())
    return start + left, start + len(stripped.rstrip())


def _common_prefix(paths: Sequence[tuple[str, ...]]) -> tuple[str, ...]:
    prefix = paths[0]
    for path in paths[1:]:
        size = 0
        while size < min(len(prefix), len(path)) and prefix[size] == path[size]:
            size += 1
        prefix = prefix[:size]
    return prefix


class _Segment:
    """Chunking state for the blocks of one page (or of a page-less document)."""

    def __init__(
        self,
        text: str,
        page: int | None,
        blocks: list[Block],
        tokenizer: SpanTokenizer,
        config: ChunkingConfig,
        budget: int,
    ) -> None:
        self.text, self.page, self.blocks = text, page, blocks
        self.tokenizer, self.config, self.budget = tokenizer, config, budget
        self.base = blocks[0].start
        self.codes = np.frombuffer(text[self.base : blocks[-1].end].encode("utf-32-le"), dtype=np.uint32)
        self.is_space = np.isin(self.codes, _WHITESPACE)
        self.block_starts = [block.start for block in blocks]
        self.block_ends = [block.end for block in blocks]
        self.starts, self.ends, cost, pieces = self._units()
        self.cost = np.concatenate(([0], np.cumsum(cost))).astype(np.int64)
        self.strength = self._strengths(pieces)

    # -- units: token spans + uncovered non-whitespace runs, over-long ones cut in pieces ----
    def _units(self) -> tuple[Ints, Ints, Ints, npt.NDArray[np.bool_]]:
        ranges: list[tuple[int, int]] = []
        for block in self.blocks:
            start = block.start
            while start < block.end:
                end = min(block.end, start + _PIECE)
                if end < block.end:
                    space = self.text.rfind(" ", start + _PIECE // 2, end)
                    end = space if space > start else end
                ranges.append((start, end))
                start = end
        found = self.tokenizer.spans([self.text[a:b] for a, b in ranges])
        parts = [np.asarray(s, dtype=np.int64).reshape(-1, 2) + a for (a, _), s in zip(ranges, found, strict=True)]
        spans = np.concatenate(parts) if parts else np.zeros((0, 2), dtype=np.int64)
        spans = spans[np.argsort(spans[:, 0], kind="stable")]
        starts, ends = spans[:, 0], spans[:, 1]
        cost = np.ones(len(starts), dtype=np.int64)
        if len(starts) > 1:  # merge tokens whose spans overlap (e.g. bytes of one character)
            reach = np.maximum.accumulate(ends)
            heads = np.concatenate(([0], np.nonzero(starts[1:] >= reach[:-1])[0] + 1))
            cost = np.add.reduceat(cost, heads)
            ends = np.maximum.reduceat(ends, heads)
            starts = starts[heads]
        starts, ends, cost = self._add_uncovered(starts, ends, cost)
        return self._split_long(starts, ends, cost)

    def _add_uncovered(self, starts: Ints, ends: Ints, cost: Ints) -> tuple[Ints, Ints, Ints]:
        size = len(self.codes)
        edge = np.zeros(size + 1, dtype=np.int64)
        np.add.at(edge, np.clip(starts - self.base, 0, size), 1)
        np.add.at(edge, np.clip(ends - self.base, 0, size), -1)
        loose = (np.cumsum(edge[:-1]) == 0) & ~self.is_space
        if not loose.any():
            return starts, ends, cost
        flips = np.diff(np.concatenate(([0], loose.astype(np.int8), [0])))
        run_starts = np.nonzero(flips == 1)[0] + self.base
        run_ends = np.nonzero(flips == -1)[0] + self.base
        order = np.argsort(np.concatenate((starts, run_starts)), kind="stable")
        return (
            np.concatenate((starts, run_starts))[order],
            np.concatenate((ends, run_ends))[order],
            np.concatenate((cost, np.zeros(len(run_starts), dtype=np.int64)))[order],
        )

    def _split_long(self, starts: Ints, ends: Ints, cost: Ints) -> tuple[Ints, Ints, Ints, npt.NDArray[np.bool_]]:
        limit = max(16, self.config.max_chars // 4)
        pieces = np.zeros(len(starts), dtype=np.bool_)
        if not ((ends - starts) > limit).any():
            return starts, ends, cost, pieces
        out: list[tuple[int, int, int, bool]] = []
        for start, end, units in zip(starts.tolist(), ends.tolist(), cost.tolist(), strict=True):
            first = True
            for cut in range(start, max(end, start + 1), limit):
                out.append((cut, min(end, cut + limit), units if first else min(units, 1), not first))
                first = False
        table = np.array(out, dtype=np.int64)
        return table[:, 0], table[:, 1], table[:, 2], table[:, 3].astype(np.bool_)

    # -- cut strengths ------------------------------------------------------------------------
    def _strengths(self, pieces: npt.NDArray[np.bool_]) -> npt.NDArray[np.int64]:
        n = len(self.starts)
        strength = np.full(n + 1, END, dtype=np.int64)
        self.verify = np.zeros(n + 1, dtype=np.bool_)
        if n < 2:
            return strength
        codes, base = self.codes, self.base
        space = np.concatenate(([0], np.cumsum(self.is_space)))
        newline = np.concatenate(([0], np.cumsum(codes == 10)))
        gap_a, gap_b = (
            self.ends[:-1] - base,
            np.maximum(self.starts[1:] - base, self.ends[:-1] - base),
        )
        has_space = space[gap_b] - space[gap_a] > 0
        has_newline = newline[gap_b] - newline[gap_a] > 0
        prev = codes[np.clip(gap_a - 1, 0, len(codes) - 1)]
        prev2 = codes[np.clip(gap_a - 2, 0, len(codes) - 1)]
        nxt = codes[np.clip(gap_b, 0, len(codes) - 1)]
        sentence = np.isin(prev, _SENTENCE_END) | (np.isin(prev, _CLOSERS) & np.isin(prev2, _SENTENCE_END))
        inner = np.full(n - 1, TOKEN, dtype=np.int64)
        inner[_is_cjk(prev) & _is_cjk(nxt)] = WORD
        inner[np.isin(prev, _CJK_SENTENCE_END)] = SENTENCE
        inner[has_space] = WORD
        inner[has_newline] = LINE
        inner[has_space & sentence] = SENTENCE
        inner[pieces[1:]] = CHAR
        strength[1:n] = inner
        # Cuts inside a pre-token (between two word characters, or inside one token) may
        # tokenise differently alone, so those chunks are re-counted (see _emit).
        wordish = _is_wordish(prev) & _is_wordish(nxt)
        self.verify[1:n] = (inner == CHAR) | ((inner == TOKEN) & wordish)
        for k in range(1, len(self.blocks)):
            t = int(np.searchsorted(self.starts, self.blocks[k].start))
            if 0 < t < n:
                strength[t] = max(int(strength[t]), self._block_cut(k))
        return strength

    def _block_cut(self, k: int) -> int:
        before, after = self.blocks[k - 1], self.blocks[k]
        if after.kind == "heading" or after.heading_path != before.heading_path:
            return SECTION
        return WORD if before.kind == "heading" else PARAGRAPH

    # -- greedy packing -----------------------------------------------------------------------
    def run(self, out: list[Chunk]) -> None:
        n, cost, cfg = len(self.starts), self.cost, self.config
        start, done = 0, 0
        min_tokens = cfg.min_tokens if cfg.min_tokens is not None else cfg.target_tokens // 2
        plans: list[tuple[int, int]] = []
        while start < n:
            hi = min(
                int(np.searchsorted(cost, cost[start] + self.budget, side="right")) - 1,
                int(np.searchsorted(self.ends, self.starts[start] + cfg.max_chars, side="right")),
                n,
            )
            hi = max(hi, done + 1, start + 1)
            lo = int(np.searchsorted(cost, cost[start] + min_tokens))
            lo = min(max(lo, done + 1, start + 1), hi)
            end = self._best(np.arange(lo, hi + 1), cost[start], cfg.target_tokens, forward=True)
            plans.append((start, end))
            if end >= n:
                break
            done, start = end, self._overlap_start(start, end)
        self._emit(plans, out)

    def _best(self, cand: Ints, anchor: int, target: int, *, forward: bool) -> int:
        tokens = (self.cost[cand] - anchor) if forward else (anchor - self.cost[cand])
        score = _WEIGHTS[self.strength[cand]] - _PENALTY * np.abs(tokens - target) / target
        return int(cand[int(np.argmax(score))])

    def _overlap_start(self, start: int, end: int) -> int:
        overlap = self.config.overlap_tokens
        if overlap == 0 or self.strength[end] >= SECTION:
            return end
        # integer probes: a float probe would make numpy convert the whole array on each call
        lo = int(np.searchsorted(self.cost, int(self.cost[end]) - (3 * overlap) // 2))
        hi = int(np.searchsorted(self.cost, int(self.cost[end]) - overlap // 2, side="right")) - 1
        sections = np.nonzero(self.strength[start + 1 : end] >= SECTION)[0]
        lo = max(lo, start + 1, start + 1 + int(sections[-1]) if len(sections) else 0)
        hi = min(hi, end - 1)
        cand = np.arange(lo, hi + 1)
        cand = cand[self.strength[cand] >= WORD] if len(cand) else cand
        if not len(cand):
            return end
        best = self._best(cand, int(self.cost[end]), overlap, forward=False)
        fits = (
            self.ends[end] - self.starts[best] <= self.config.max_chars
            and self.cost[end + 1] - self.cost[best] <= self.budget
        )
        return best if fits else end

    def _emit(self, plans: list[tuple[int, int]], out: list[Chunk]) -> None:
        spans = [_trim(self.text, int(self.starts[i]), int(self.ends[j - 1])) for i, j in plans]
        hard = [bool(self.strength[i] < WORD or self.strength[j] < WORD) for i, j in plans]
        verify = [bool(self.verify[i] or self.verify[j]) for i, j in plans]
        # chunks cut inside a pre-token are re-tokenised alone, all in one batch
        texts = [self.text[a:b] for (a, b), v in zip(spans, verify, strict=True) if v]
        recount = iter([len(found) for found in self.tokenizer.spans(texts)] if texts else [])
        for (first, stop), (a, b), is_hard, check in zip(plans, spans, hard, verify, strict=True):
            if a >= b:
                continue
            boundary = BOUNDARY_NAMES[int(self.strength[stop])]
            count = next(recount) if check else int(self.cost[stop] - self.cost[first])
            pieces = self._refit(a, b) if count > self.budget else [(a, b, count)]
            for p_start, p_end, p_count in pieces:
                text = self.text[p_start:p_end]
                out.append(
                    Chunk(
                        ordinal=len(out),
                        text=text,
                        char_start=p_start,
                        char_end=p_end,
                        page=self.page,
                        heading_path=self._heading_path(p_start, p_end),
                        token_count=p_count,
                        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
                        boundary=boundary if p_end == b else BOUNDARY_NAMES[CHAR],
                        hard_split=is_hard or len(pieces) > 1,
                    )
                )

    def _refit(self, a: int, b: int) -> list[tuple[int, int, int]]:
        """Hard-split chunks are re-tokenised alone and halved until each fits the budget."""
        todo, done = [(a, b)], []
        while todo:
            start, end = todo.pop()
            count = len(self.tokenizer.spans([self.text[start:end]])[0])
            if count <= self.budget or end - start <= 1:
                done.append((start, end, count))
                continue
            middle = (start + end) // 2
            space = self.text.rfind(" ", start + 1, middle + 1)
            middle = space if space > start + (end - start) // 4 else middle
            for piece in ((middle, end), (start, middle)):
                p_start, p_end = _trim(self.text, *piece)
                if p_start < p_end:
                    todo.append((p_start, p_end))
        return sorted(done)

    def _heading_path(self, a: int, b: int) -> tuple[str, ...]:
        first = bisect.bisect_right(self.block_ends, a)
        stop = bisect.bisect_left(self.block_starts, b)
        paths = [blk.heading_path for blk in self.blocks[first:stop]]
        return _common_prefix(paths) if paths else ()


def _is_wordish(codes: npt.NDArray[np.uint32]) -> npt.NDArray[np.bool_]:
    """ASCII letters/digits/underscore, or any non-ASCII character (conservative)."""
    lower = codes | 0x20
    found: npt.NDArray[np.bool_] = (
        ((lower >= 0x61) & (lower <= 0x7A)) | ((codes >= 0x30) & (codes <= 0x39)) | (codes == 0x5F) | (codes >= 0x80)
    )
    return found


def _is_cjk(codes: npt.NDArray[np.uint32]) -> npt.NDArray[np.bool_]:
    return (
        ((codes >= 0x3040) & (codes <= 0x30FF))  # kana
        | ((codes >= 0x3400) & (codes <= 0x9FFF))  # CJK ideographs
        | ((codes >= 0xF900) & (codes <= 0xFAFF))
        | ((codes >= 0x20000) & (codes <= 0x2FFFF))
    )

"""Chunking properties (hypothesis) with the real MiniLM tokenizer.

For generated documents of headings and paragraphs over pages: chunks are exact slices of the
text, cover every character, fit the model, never cut inside a word, reach the target size,
overlap by about ``overlap_tokens`` inside a section, end at paragraph/heading boundaries when
one is in reach, stay on one page and carry the heading path of what they cover.
"""

from __future__ import annotations

import bisect
import itertools
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backend.ingest.chunking import ChunkingConfig, HFSpanTokenizer, chunk_document
from backend.ingest.extract.document import ExtractedDocument, TextBuilder

CONFIG = ChunkingConfig(target_tokens=80, overlap_tokens=12, max_tokens=128)
MIN_TOKENS = CONFIG.target_tokens // 2
BUDGET = CONFIG.max_tokens - 2

words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=12)
sentence = st.lists(words, min_size=3, max_size=18).map(lambda ws: " ".join(ws).capitalize() + ".")
paragraph = st.lists(sentence, min_size=1, max_size=8).map(" ".join)
heading = st.lists(words, min_size=1, max_size=4).map(lambda ws: " ".join(ws).title())


@dataclass
class Gen:
    doc: ExtractedDocument
    headings: list[int]  # char offsets where a heading block starts


@st.composite
def documents(draw: st.DrawFn, paged: bool = False) -> Gen:
    builder = TextBuilder()
    path: list[str] = []
    headings: list[int] = []
    page = 1 if paged else None
    for _ in range(draw(st.integers(1, 14))):
        if paged and draw(st.booleans()):
            assert page is not None
            page += 1
        if draw(st.integers(0, 4)) == 0:
            level = draw(st.integers(1, 3))
            title = draw(heading)
            path = [*path[: level - 1], title]
            headings.append(builder.length + (2 if builder.length else 0))
            builder.add(title, "heading", page=page, heading_path=tuple(path))
        else:
            builder.add(draw(paragraph), "paragraph", page=page, heading_path=tuple(path))
    return Gen(builder.build("text/plain", pages=page), headings)


def token_positions(tokenizer: HFSpanTokenizer, text: str) -> tuple[list[int], list[int]]:
    spans = tokenizer.spans([text])[0]
    return [a for a, _ in spans], [b for _, b in spans]


def tokens_between(starts: list[int], ends: list[int], a: int, b: int) -> int:
    """Tokens lying entirely inside text[a:b]."""
    return bisect.bisect_right(ends, b) - bisect.bisect_left(starts, a)


HYPO = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@HYPO
@given(gen=documents(paged=True))
def test_chunks_are_exact_slices_that_fit_and_cover_everything(tokenizer: HFSpanTokenizer, gen: Gen) -> None:
    doc = gen.doc
    chunks = chunk_document(doc, tokenizer, CONFIG)
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    covered = [False] * len(doc.text)
    for c in chunks:
        assert doc.text[c.char_start : c.char_end] == c.text and c.text == c.text.strip()
        assert c.token_count == len(tokenizer.spans([c.text])[0]) <= BUDGET
        for i in range(c.char_start, c.char_end):
            covered[i] = True
    assert all(covered[i] or doc.text[i].isspace() for i in range(len(doc.text))), "text was lost"
    assert [c.char_start for c in chunks] == sorted(c.char_start for c in chunks)


@HYPO
@given(gen=documents(paged=True))
def test_never_split_inside_a_word(tokenizer: HFSpanTokenizer, gen: Gen) -> None:
    text = gen.doc.text
    for c in chunk_document(gen.doc, tokenizer, CONFIG):
        assert not c.hard_split
        assert c.char_start == 0 or not text[c.char_start - 1].isalnum(), text[c.char_start - 5 : c.char_start + 5]
        assert c.char_end == len(text) or not text[c.char_end].isalnum(), text[c.char_end - 5 : c.char_end + 5]


@HYPO
@given(gen=documents(paged=True))
def test_chunks_stay_on_one_page_and_carry_the_heading_path(tokenizer: HFSpanTokenizer, gen: Gen) -> None:
    doc = gen.doc
    for c in chunk_document(doc, tokenizer, CONFIG):
        inside = [b for b in doc.blocks if b.start < c.char_end and b.end > c.char_start]
        assert {b.page for b in inside} == {c.page}
        paths = [b.heading_path for b in inside]
        prefix = paths[0]
        for p in paths[1:]:
            prefix = tuple(x for x, y in zip(prefix, p, strict=False) if x == y)[: len(prefix)]
            while prefix != p[: len(prefix)]:
                prefix = prefix[:-1]
        assert c.heading_path == prefix


@HYPO
@given(gen=documents())
def test_target_size_overlap_and_boundary_preference(tokenizer: HFSpanTokenizer, gen: Gen) -> None:
    doc = gen.doc
    chunks = chunk_document(doc, tokenizer, CONFIG)
    starts, ends = token_positions(tokenizer, doc.text)
    # cuts before a block are paragraph/section cuts, except right after a heading (a heading
    # stays with the text it introduces unless the next block starts another section)
    block_edges = {
        b.start: b
        for a, b in itertools.pairwise(doc.blocks)
        if a.kind != "heading" or b.kind == "heading" or a.heading_path != b.heading_path
    }
    for prev, nxt in itertools.pairwise(chunks):
        # every chunk but the last reaches half the target before it may cut
        assert prev.token_count >= MIN_TOKENS
        if prev.boundary != "section":
            # inside a section, the next chunk repeats about overlap_tokens of the previous one
            assert nxt.char_start < prev.char_end
            shared = tokens_between(starts, ends, nxt.char_start, prev.char_end)
            assert CONFIG.overlap_tokens // 2 <= shared <= (3 * CONFIG.overlap_tokens) // 2 + 1
        else:
            assert nxt.char_start >= prev.char_end
        # a paragraph or heading boundary within reach and less than target/2 from the target
        # beats every cut between sentences or words (score: weight - 2 |tokens - target| / target)
        target = CONFIG.target_tokens
        reachable = [
            pos for pos in block_edges
            if prev.char_start < pos
            and abs(tokens_between(starts, ends, prev.char_start, pos) - target) < target / 2
            and tokens_between(starts, ends, prev.char_start, pos) <= BUDGET
        ]  # fmt: skip
        if reachable:
            assert prev.boundary in {"paragraph", "section"}, (prev.boundary, prev.token_count)
            assert prev.char_end in {b.end for b in doc.blocks}


def test_headings_start_chunks_and_name_them(tokenizer: HFSpanTokenizer) -> None:
    builder = TextBuilder()
    body = "Tables keep rows in pages and indexes point at them quickly. " * 7  # ~80 tokens
    for title in ("Storage", "Indexes", "Vacuum"):
        builder.add(title, "heading", heading_path=(title,))
        builder.add(body, "paragraph", heading_path=(title,))
        builder.add(body, "paragraph", heading_path=(title,))
    doc = builder.build("text/markdown")
    chunks = chunk_document(doc, tokenizer, ChunkingConfig(target_tokens=200, overlap_tokens=30))
    starts = {c.char_start: c for c in chunks}
    for b in doc.blocks:
        if b.kind == "heading":
            assert b.start in starts, f"no chunk starts at heading {doc.text[b.start : b.end]!r}"
            assert starts[b.start].heading_path == b.heading_path
    assert all(len(c.heading_path) == 1 for c in chunks)
    assert [c.boundary for c in chunks].count("section") == 2


def test_default_config_is_200_tokens_with_15_percent_overlap() -> None:
    cfg = ChunkingConfig()
    assert (cfg.target_tokens, cfg.overlap_tokens, cfg.max_tokens) == (200, 30, 256)
    with pytest.raises(ValueError):
        ChunkingConfig(target_tokens=300)
    with pytest.raises(ValueError):
        ChunkingConfig(overlap_tokens=150)

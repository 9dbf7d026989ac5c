"""RAG context assembly: overlap-exact merging, dedupe, citations, the token budget."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.ingest.chunking import HFSpanTokenizer
from backend.search.context import ContextChunk, assemble, merge_passages
from tests.ingest.fixtures import tokenizer_path


def words(text: str) -> int:
    return len(text.split())


@st.composite
def documents(draw: st.DrawFn) -> tuple[str, list[ContextChunk]]:
    """A document text cut into consecutive, overlapping chunks (like the chunker's output)."""
    text = draw(st.text(alphabet="abcdefgh ij\n", min_size=20, max_size=800))
    n = draw(st.integers(1, 8))
    cuts = sorted(set(draw(st.lists(st.integers(1, len(text) - 1), min_size=n - 1, max_size=n - 1))))
    bounds = [0, *cuts, len(text)]
    chunks = []
    for i in range(len(bounds) - 1):
        overlap = draw(st.integers(0, 15)) if i else 0
        start = max(0, bounds[i] - overlap)
        end = bounds[i + 1]
        chunks.append(ContextChunk(i + 1, "doc", i, text[start:end], start, end, None, "", 0.0, "Doc"))
    return text, chunks


@settings(max_examples=300, deadline=None)
@given(documents(), st.data())
def test_merged_passages_are_exact_slices(doc: tuple[str, list[ContextChunk]], data: st.DataObject) -> None:
    text, chunks = doc
    picked = data.draw(st.lists(st.sampled_from(chunks), unique_by=lambda c: c.chunk_id, min_size=1))
    ranked = [
        ContextChunk(c.chunk_id, c.document_id, c.ordinal, c.text, c.char_start, c.char_end, None, "", float(-i), "Doc")
        for i, c in enumerate(picked)
    ]
    passages = merge_passages(ranked)
    covered = sorted(c.chunk_id for p in passages for c in p.chunks)
    first_of_text: dict[str, int] = {}
    for c in ranked:  # a text seen again (even in another chunk) is a duplicate
        first_of_text.setdefault(c.text.strip(), c.chunk_id)
    assert covered == sorted(first_of_text.values())
    for p in passages:
        ords = [c.ordinal for c in p.chunks]
        assert ords == list(range(ords[0], ords[0] + len(ords)))
        if all(c.char_start <= prev.char_end for prev, c in zip(p.chunks, p.chunks[1:], strict=False)):
            assert p.text == text[p.char_start : p.char_end]
    assert [p.score for p in passages] == sorted((p.score for p in passages), reverse=True)


def test_duplicates_are_removed_and_the_better_copy_stays() -> None:
    a = ContextChunk(1, "doc-a", 0, "same text", 0, 9, 1, "", 0.9, "A")
    b = ContextChunk(2, "doc-b", 0, "same text ", 0, 10, 1, "", 0.5, "B")
    c = ContextChunk(1, "doc-a", 0, "same text", 0, 9, 1, "", 0.4, "A")
    passages = merge_passages([a, b, c])
    assert [(p.document_id, p.text) for p in passages] == [("doc-a", "same text")]


def test_citations_carry_document_pages_and_offsets() -> None:
    chunks = [
        ContextChunk(10, "d1", 3, "alpha beta gamma", 100, 116, 4, "Ch 1 > Sec 2", 0.9, "Manual", "/x/m.pdf"),
        ContextChunk(11, "d1", 4, "gamma delta", 111, 122, 5, "Ch 1 > Sec 2", 0.7, "Manual", "/x/m.pdf"),
        ContextChunk(20, "d2", 0, "other words here", 0, 16, None, "", 0.8, "Notes"),
    ]
    out = assemble(merge_passages(chunks), 1000, words)
    first = out.citations[0]
    assert first["n"] == 1 and first["document_id"] == "d1" and first["pages"] == [4, 5]
    assert (first["char_start"], first["char_end"]) == (100, 122)
    assert first["chunk_ids"] == [10, 11] and first["text"] == "alpha beta gamma delta"
    assert out.context.startswith("[1] Manual (pp. 4-5; Ch 1 > Sec 2)\nalpha beta gamma delta")
    assert "[2] Notes\nother words here" in out.context


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.text(alphabet="xyz \n", max_size=200), st.floats(0, 1)), max_size=15), st.integers(1, 300))
def test_budget_is_never_exceeded(items: list[tuple[str, float]], budget: int) -> None:
    chunks = [ContextChunk(i, f"d{i % 4}", i, t, 0, len(t), None, "", s, f"T{i}") for i, (t, s) in enumerate(items)]
    out = assemble(merge_passages(chunks), budget, words)
    assert words(out.context) <= budget
    assert out.tokens == words(out.context)
    assert [c["n"] for c in out.citations] == list(range(1, len(out.citations) + 1))


@pytest.fixture(scope="module")
def wordpiece() -> HFSpanTokenizer:
    return HFSpanTokenizer.from_file(tokenizer_path())


def test_budget_with_the_model_tokenizer(wordpiece: HFSpanTokenizer) -> None:
    def count(text: str) -> int:
        return len(wordpiece.spans([text])[0])

    texts = [
        f"Chunk {i}: VACUUM reclaims storage occupied by dead tuples; pg_stat_activity shows sessions. " * 3
        for i in range(12)
    ]
    chunks = [
        ContextChunk(i, f"doc{i}", 0, t, 0, len(t), i, "Maintenance", 1.0 - i / 20, f"Page {i}")
        for i, t in enumerate(texts)
    ]
    for budget in (10, 60, 100, 250, 700, 5000):
        out = assemble(merge_passages(chunks), budget, count)
        assert count(out.context) <= budget
        if budget >= 100:
            assert out.citations, budget

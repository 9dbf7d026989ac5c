"""Snippets and highlight offsets."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from backend.search.query import parse_query, tokens
from backend.search.snippets import find_matches, fold, make_snippet

TEXT = (
    "Routine vacuuming. PostgreSQL databases require periodic maintenance known as vacuuming. "
    "For many installations, it is sufficient to let vacuuming be performed by the autovacuum daemon. "
    "The VACUUM command processes each table; VACUUM FULL rewrites it. Naïve cafés are unrelated."
)


def marked(text: str, query: str, max_chars: int = 1000) -> list[str]:
    sn = make_snippet(text, parse_query(query), max_chars)
    return [sn.text[a:b] for a, b in sn.highlights]


def test_highlights_mark_the_terms_case_insensitively() -> None:
    assert marked(TEXT, "vacuum") == ["VACUUM", "VACUUM"]
    assert marked(TEXT, "vacuum*") == ["vacuuming", "vacuuming", "vacuuming", "VACUUM", "VACUUM"]


def test_phrase_highlight_covers_the_whole_phrase() -> None:
    assert marked(TEXT, '"vacuum full"') == ["VACUUM FULL"]


def test_diacritics_fold_like_fts5() -> None:
    assert marked(TEXT, "naive cafes") == ["Naïve", "cafés"]


def test_identifier_highlight() -> None:
    text = "Query pg_stat_activity for sessions; pg stat is different."
    assert marked(text, "pg_stat_activity") == ["pg_stat_activity"]


def test_window_shows_the_terms() -> None:
    sn = make_snippet(TEXT, parse_query("autovacuum daemon"), 80)
    assert "autovacuum daemon" in sn.text
    assert len(sn.text) <= 100
    assert TEXT[sn.start : sn.end] == sn.text


def test_no_match_gives_leading_text() -> None:
    sn = make_snippet(TEXT, parse_query("replication"), 50)
    assert sn.start == 0 and sn.highlights == ()
    assert TEXT.startswith(sn.text)


@example(text='0"0:0', query="0:0:0", max_chars=10)  # a quote inside a matched phrase span
@settings(max_examples=300, deadline=None)
@given(st.text(max_size=600), st.text(max_size=40), st.integers(min_value=10, max_value=300))
def test_snippet_invariants(text: str, query: str, max_chars: int) -> None:
    q = parse_query(query)
    sn = make_snippet(text, q, max_chars)
    assert text[sn.start : sn.end] == sn.text
    last = 0
    for a, b in sn.highlights:
        assert last <= a < b <= len(sn.text)
        last = b
    for a, b, t_index in find_matches(text, q.terms):
        term = q.terms[t_index]
        # the words of the matched span (not parse_query: a '"' inside the span would start a phrase)
        got = [fold(w) for w in tokens(text[a:b])]
        want = [fold(w) for w in term.words]
        assert got[: len(want) - 1] == want[:-1]
        assert got[len(want) - 1].startswith(want[-1]) if term.kind == "prefix" else got[len(want) - 1] == want[-1]

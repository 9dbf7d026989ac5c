"""Query translation: any user text yields a valid FTS5 expression (or none), with the small
syntax we promise (phrases, prefix*) and everything else taken literally."""

from __future__ import annotations

from collections.abc import Iterator

import apsw
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.search.query import MAX_TERMS, fts5_expression, is_token_char, parse_query, tokens
from backend.store.connection import load_sqlite_vec

ROWS = {
    1: "The pg_stat_activity view has one row per server process",
    2: "pg and stat and activity as separate words: activity stats for pg",
    3: "Write-ahead logging (WAL) is a standard method",
    4: "write the log ahead of time",
    5: "NOT NULL constraints AND check constraints OR foreign keys",
    6: "Vacuuming reclaims storage; vacuum full rewrites the table",
    7: "Café crème brûlée naïve",
}


@pytest.fixture(scope="module")
def fts() -> Iterator[apsw.Connection]:
    conn = apsw.Connection(":memory:")
    load_sqlite_vec(conn)
    conn.execute("CREATE VIRTUAL TABLE t USING fts5(text, tokenize = 'unicode61 remove_diacritics 2')")
    conn.executemany("INSERT INTO t(rowid, text) VALUES (?, ?)", list(ROWS.items()))
    yield conn
    conn.close()


def match(conn: apsw.Connection, text: str, op: str = "OR") -> set[int]:
    expr = fts5_expression(parse_query(text), op)  # type: ignore[arg-type]
    if expr is None:
        return set()
    return {int(r[0]) for r in conn.execute("SELECT rowid FROM t WHERE t MATCH ?", (expr,))}


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=300))
def test_any_text_is_a_valid_fts5_query(fts: apsw.Connection, text: str) -> None:
    for op in ("OR", "AND"):
        expr = fts5_expression(parse_query(text), op)  # type: ignore[arg-type]
        if expr is not None:
            fts.execute("SELECT rowid FROM t WHERE t MATCH ?", (expr,)).fetchall()  # must not raise


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                '"',
                "*",
                "(",
                ")",
                ":",
                "^",
                "-",
                "+",
                "NEAR",
                "AND",
                "OR",
                "NOT",
                "\x00",
                "col:",
                "{",
                "}",
                "'",
                "pg",
                "wal",
                " ",
                "\\",
            ]
        ),
        max_size=30,
    )
)
def test_operator_soup_is_valid(fts: apsw.Connection, parts: list[str]) -> None:
    text = "".join(parts)
    for op in ("OR", "AND"):
        expr = fts5_expression(parse_query(text), op)  # type: ignore[arg-type]
        if expr is not None:
            fts.execute("SELECT rowid FROM t WHERE t MATCH ?", (expr,)).fetchall()


def test_identifier_matches_as_a_phrase(fts: apsw.Connection) -> None:
    # the identifier's pieces are adjacent only in row 1; row 2 has them as loose words
    assert match(fts, "pg_stat_activity") == {1}


def test_quoted_phrase_requires_adjacency(fts: apsw.Connection) -> None:
    assert match(fts, '"write ahead"') == {3}
    assert match(fts, "write ahead", "AND") == {3, 4}


def test_prefix_term(fts: apsw.Connection) -> None:
    assert match(fts, "vacuum*") == {6}
    assert match(fts, "vacuum") == {6}
    assert match(fts, "vacuumi*") == {6}
    assert match(fts, "vacuumi") == set()


def test_operators_are_words_not_syntax(fts: apsw.Connection) -> None:
    # "NOT" would be FTS5's NOT operator if passed raw; here it is a word to find
    assert match(fts, "NOT NULL", "AND") == {5}
    assert match(fts, "constraints NEAR keys", "AND") == set()  # 'near' is not in row 5
    assert match(fts, "foreign AND keys", "AND") == {5}


def test_unbalanced_quote_is_ignored(fts: apsw.Connection) -> None:
    assert match(fts, '"write ahead') == {3, 4}
    assert parse_query('"""').empty


def test_diacritics_and_case_fold(fts: apsw.Connection) -> None:
    assert match(fts, "CAFE creme") == {7}


@pytest.mark.parametrize("text", ["", "   ", "\x00\x00", "😀🎉", "!!! ??? ...", "*", '""', "\ud800"])
def test_nothing_searchable(text: str) -> None:
    assert fts5_expression(parse_query(text)) is None


def test_nul_bytes_split_words(fts: apsw.Connection) -> None:
    assert match(fts, "vacuum\x00full", "AND") == {6}


def test_stop_words_dropped_from_or_unless_alone() -> None:
    assert fts5_expression(parse_query("how do I vacuum the table")) == '"vacuum" OR "table"'
    assert fts5_expression(parse_query("the")) == '"the"'
    assert fts5_expression(parse_query("how do I vacuum"), "AND") == '"how" AND "do" AND "i" AND "vacuum"'


def test_term_count_is_bounded() -> None:
    q = parse_query(" ".join(f"w{i}" for i in range(1000)))
    assert len(q.terms) == MAX_TERMS


def test_duplicates_collapse() -> None:
    assert len(parse_query("wal WAL Wal").terms) == 1


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=200))
def test_token_regex_matches_the_character_classes(text: str) -> None:
    expected, cur = [], ""
    for ch in text:
        if is_token_char(ch):
            cur += ch
        elif cur:
            expected.append(cur.lower())
            cur = ""
    if cur:
        expected.append(cur.lower())
    assert tokens(text) == expected

"""User query text → safe FTS5 expressions (pure functions).

Whatever the user types, :func:`fts5_expression` returns either ``None`` (nothing searchable)
or an expression the FTS5 parser accepts: every term becomes an FTS5 *string* (``"..."`` with
inner quotes doubled), so operators (``AND OR NOT NEAR``), column filters (``col:``), ``^``,
parentheses, ``+``/``-`` and stray quotes in user text are plain characters, never syntax.

Supported syntax, on purpose small:

* ``word`` — a term. Punctuation inside it splits it the way the ``unicode61`` tokenizer does,
  and FTS5 matches the pieces as a phrase: ``pg_stat_activity`` finds the identifier only.
* ``"several words"`` — a phrase. An unbalanced ``"`` is ignored (the rest are plain words).
* ``prefix*`` — prefix match (at least :data:`MIN_PREFIX` characters before the ``*``).

NUL bytes and control characters are separators; terms without a letter or digit (emoji,
punctuation) are dropped. At most :data:`MAX_TERMS` distinct terms are kept. For the OR form,
common English stop words are dropped unless nothing else is left.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

MAX_TERMS = 32
MIN_PREFIX = 2
TermKind = Literal["word", "phrase", "prefix"]

STOPWORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "me",
        "more",
        "most",
        "my",
        "myself",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "ourselves",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "yourself",
        "yourselves",
    ]
)


@dataclass(frozen=True, slots=True)
class Term:
    text: str
    """The user's characters for this term (quotes and the trailing ``*`` removed)."""
    kind: TermKind

    @property
    def words(self) -> tuple[str, ...]:
        """The tokens FTS5's unicode61 tokenizer makes of :attr:`text` (lower-cased)."""
        return tuple(tokens(self.text))

    @property
    def is_stopword(self) -> bool:
        w = self.words
        return self.kind == "word" and len(w) == 1 and w[0] in STOPWORDS


@dataclass(frozen=True, slots=True)
class ParsedQuery:
    terms: tuple[Term, ...]

    @property
    def empty(self) -> bool:
        return not self.terms

    def significant(self) -> tuple[Term, ...]:
        """Terms without stop words (all terms if only stop words are left)."""
        kept = tuple(t for t in self.terms if not t.is_stopword)
        return kept or self.terms


def is_token_char(ch: str) -> bool:
    """What ``unicode61`` keeps in a token: letters, numbers, private-use characters."""
    cat = unicodedata.category(ch)
    return cat[0] in "LN" or cat == "Co"


TOKEN_RE = re.compile(r"(?:[^\W_]|[\ue000-\uf8ff\U000f0000-\U000ffffd\U00100000-\U0010fffd])+")
"""Runs of :func:`is_token_char` characters (``[^\\W_]`` is exactly the L* and N* categories)."""


def tokens(text: str) -> list[str]:
    """Split ``text`` into lower-cased runs of token characters (unicode61's view, roughly)."""
    return [m.group().lower() for m in TOKEN_RE.finditer(text)]


def _clean(text: str) -> str:
    """Control characters (NUL included) become spaces; lone surrogates are dropped."""
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if cat == "Cs":
            continue
        out.append(" " if cat == "Cc" else ch)
    return "".join(out)


def parse_query(text: str, *, max_terms: int = MAX_TERMS) -> ParsedQuery:
    """Parse user text into terms (never raises for any string)."""
    s = _clean(text)
    terms: list[Term] = []
    seen: set[tuple[str, TermKind]] = set()

    def add(raw: str, kind: TermKind) -> None:
        words = tokens(raw)
        if not words:
            return
        if kind == "phrase" and len(words) == 1:
            kind = "word"
        if kind == "prefix" and len(words[-1]) < MIN_PREFIX:
            kind = "word"
        key = (" ".join(words), kind)
        if key not in seen and len(terms) < max_terms:
            seen.add(key)
            terms.append(Term(raw.strip(), kind))

    i, n = 0, len(s)
    while i < n and len(terms) < max_terms:
        ch = s[i]
        if ch.isspace():
            i += 1
            continue
        if ch == '"':
            close = s.find('"', i + 1)
            if close == -1:  # unbalanced: drop the quote, read the rest as words
                i += 1
                continue
            add(s[i + 1 : close], "phrase")
            i = close + 1
            continue
        j = i
        while j < n and not s[j].isspace() and s[j] != '"':
            j += 1
        word = s[i:j]
        if word.endswith("*") and word.rstrip("*"):
            add(word.rstrip("*"), "prefix")
        else:
            add(word, "word")
        i = j
    return ParsedQuery(tuple(terms))


def _fts_string(words: tuple[str, ...]) -> str:
    # Words are runs of token characters only, so they contain no quote; keep the doubling rule
    # anyway so this stays safe if ``tokens`` ever changes.
    return '"' + " ".join(words).replace('"', '""') + '"'


def term_expression(term: Term) -> str:
    words = term.words
    return _fts_string(words) + ("*" if term.kind == "prefix" else "")


def fts5_expression(query: ParsedQuery, op: Literal["AND", "OR"] = "OR") -> str | None:
    """The FTS5 MATCH expression for ``query`` (terms joined by ``op``), or None if empty.

    For ``OR`` stop words are dropped (they match almost every chunk and only cost time);
    ``AND`` keeps every term.
    """
    terms = query.significant() if op == "OR" else query.terms
    parts = [term_expression(t) for t in terms if t.words]
    if not parts:
        return None
    return f" {op} ".join(parts)

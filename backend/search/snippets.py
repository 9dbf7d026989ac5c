"""Snippets with highlight offsets (pure functions).

The highlights mark where the query's terms occur in a chunk, matched the way the FTS5
``unicode61 remove_diacritics 2`` tokenizer matches: runs of letters/digits, case-folded,
diacritics removed; a phrase matches consecutive tokens, a prefix term the start of a token.
They are computed in Python for every hit (keyword and semantic alike), so a semantic-only hit
still shows the query words it happens to contain.

Offsets are Python string indices (code points): ``snippet.text == chunk_text[start:end]`` and
each highlight ``(a, b)`` marks ``snippet.text[a:b]``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from backend.search.query import TOKEN_RE, ParsedQuery, Term

DEFAULT_SNIPPET_CHARS = 240
LEAD_CHARS = 40


@dataclass(frozen=True, slots=True)
class Snippet:
    text: str
    start: int
    end: int
    highlights: tuple[tuple[int, int], ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "text": self.text,
            "start": self.start,
            "end": self.end,
            "highlights": [list(h) for h in self.highlights],
        }


@lru_cache(maxsize=4096)
def fold(token: str) -> str:
    """Lower-case and strip combining marks (what remove_diacritics does to a token)."""
    decomposed = unicodedata.normalize("NFKD", token)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def token_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, folded token) for each run of token characters in ``text``."""
    return [(m.start(), m.end(), fold(m.group())) for m in TOKEN_RE.finditer(text)]


def _term_words(term: Term) -> tuple[str, ...]:
    return tuple(fold(w) for w in term.words)


def find_matches(text: str, terms: Sequence[Term]) -> list[tuple[int, int, int]]:
    """Non-overlapping (start, end, term index) matches of ``terms`` in ``text``, in order."""
    spans = token_spans(text)
    if not spans or not terms:
        return []
    found: list[tuple[int, int, int]] = []
    words = [s[2] for s in spans]
    where: dict[str, list[int]] = {}
    for i, w in enumerate(words):
        where.setdefault(w, []).append(i)
    for t_index, term in enumerate(terms):
        want = _term_words(term)
        if not want:
            continue
        n = len(want)
        if n == 1 and term.kind == "prefix":
            starts = [i for i, w in enumerate(words) if w.startswith(want[0])]
        else:
            starts = where.get(want[0], [])
        for i in starts:
            if i + n > len(words) or words[i + 1 : i + n - 1] != list(want[1 : n - 1]):
                continue
            last = words[i + n - 1]
            ok = last.startswith(want[-1]) if term.kind == "prefix" else last == want[-1]
            if ok:
                found.append((spans[i][0], spans[i + n - 1][1], t_index))
    found.sort(key=lambda m: (m[0], -(m[1] - m[0])))
    merged: list[tuple[int, int, int]] = []
    for m in found:
        if merged and m[0] < merged[-1][1]:
            continue
        merged.append(m)
    return merged


def _snap_start(text: str, pos: int) -> int:
    """Move ``pos`` back to the start of the word it falls in."""
    while 0 < pos < len(text) and not text[pos - 1].isspace() and not text[pos].isspace():
        pos -= 1
    return pos


def _snap_end(text: str, pos: int) -> int:
    while 0 < pos < len(text) and not text[pos - 1].isspace() and not text[pos].isspace():
        pos += 1
    return pos


def make_snippet(text: str, query: ParsedQuery, max_chars: int = DEFAULT_SNIPPET_CHARS) -> Snippet:
    """The window of at most about ``max_chars`` characters showing most distinct query terms."""
    matches = find_matches(text, query.terms)
    if len(text) <= max_chars:
        start, end = 0, len(text)
    elif not matches:
        start, end = 0, _snap_end(text, max_chars)
    else:
        best, best_score = 0, (-1, 0)
        for i, (s, _, _) in enumerate(matches):
            inside = [m for m in matches[i:] if m[1] <= s + max_chars]
            score = (len({m[2] for m in inside}), len(inside))
            if score > best_score:
                best, best_score = i, score
        first = matches[best][0]
        start = _snap_start(text, max(0, first - LEAD_CHARS))
        end = min(len(text), start + max_chars)
        end = _snap_end(text, end) if end < len(text) else end
    highlights = tuple((a - start, b - start) for a, b, _ in matches if a >= start and b <= end)
    return Snippet(text[start:end], start, end, highlights)

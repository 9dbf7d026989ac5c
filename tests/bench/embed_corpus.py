"""Benchmark corpus for the embedding bench: ~200-token chunks of the PostgreSQL HTML docs.

The pages (Debian ``postgresql-doc-15``, ``/usr/share/doc/postgresql-doc-15/html``) are read in
file-name order, reduced to text with a simple tag stripper, tokenized with the model's
tokenizer (no special tokens) and cut into windows of ``window`` word pieces; a window's text
is the slice of the page between its first and last piece's character offsets. The last
window of a page is shorter, so lengths vary a little, like real chunks. ``sample`` picks
``n`` windows evenly spread over the whole documentation (deterministic).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

from tokenizers import Tokenizer

PG_DOCS = Path("/usr/share/doc/postgresql-doc-15/html")
_DROP = re.compile(r"<(script|style|head)\b.*?</\1\s*>", re.S | re.I)
_TAG = re.compile(r"<[^>]+>")
_WS = re.compile(r"\s+")


def page_text(raw: str) -> str:
    return _WS.sub(" ", html.unescape(_TAG.sub(" ", _DROP.sub(" ", raw)))).strip()


def windows(text: str, tokenizer: Tokenizer, window: int) -> Iterator[str]:
    enc = tokenizer.encode(text, add_special_tokens=False)
    offsets = enc.offsets
    for start in range(0, len(offsets), window):
        piece = offsets[start : start + window]
        yield text[piece[0][0] : piece[-1][1]]


def build(tokenizer: Tokenizer, n: int, *, window: int = 198, docs: Path = PG_DOCS) -> list[str]:
    """``n`` chunks of at most ``window`` word pieces (+2 special tokens = 200)."""
    pages = sorted(docs.glob("*.html"))
    if not pages:
        raise SystemExit(
            f"no HTML files in {docs}: install the Debian package postgresql-doc-15 (apt-get install postgresql-doc-15)"
        )
    chunks = [
        w
        for p in pages
        for w in windows(page_text(p.read_text(encoding="utf-8", errors="replace")), tokenizer, window)
        if len(w) > 20
    ]
    if len(chunks) < n:
        raise SystemExit(f"only {len(chunks)} chunks available, asked for {n}")
    step = len(chunks) / n
    return [chunks[int(i * step)] for i in range(n)]


def queries(tokenizer: Tokenizer, corpus: list[str], n: int) -> list[str]:
    """``n`` short distinct queries: the first 6-16 word pieces of corpus chunks."""
    out: list[str] = []
    seen: set[str] = set()
    for i, chunk in enumerate(corpus[1::2]):
        q = next(windows(chunk, tokenizer, 6 + i % 11), "")
        if q and q not in seen:
            seen.add(q)
            out.append(q)
        if len(out) == n:
            break
    return out

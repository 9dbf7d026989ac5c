"""Real-text corpora for the search benchmark and the retrieval evaluation.

* :func:`postgres_chunks` — the PostgreSQL 15 manual (Debian ``postgresql-doc-15``, HTML under
  ``/usr/share/doc/postgresql-doc-15/html/``) extracted with ``backend.ingest.extract`` and cut
  with ``backend.ingest.chunking`` when those modules are importable, else with the small
  bench-local fallbacks below (regex HTML stripping, paragraph packing by characters).
* :func:`real_text_units` — ≥ 100k distinct real-text snippets for the vector benchmark: the
  manual's chunks, Python standard-library docstring paragraphs (always present where the
  benchmark runs) and the manual's sentences and sentence pairs.

Vectors for every text are computed once with the real model and kept in
``tests/bench/out/vectors-<model>.sqlite`` (see :mod:`tests.bench.vector_cache`); run
``python -m tests.bench.corpus`` to fill the cache ahead of time (resumable).
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import html
import re
import sys
import sysconfig
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PG_HTML_DIR = Path("/usr/share/doc/postgresql-doc-15/html")
REPO = Path(__file__).resolve().parents[2]
OUT_DIR = REPO / "tests" / "bench" / "out"
MODELS_DIR = REPO / "models"


@dataclass(frozen=True, slots=True)
class BenchChunk:
    """One chunk of one page, shaped like a row of ``chunks`` + its document's fields."""

    page: str  # file name, e.g. "monitoring-stats.html" (the judged set refers to these)
    title: str
    ordinal: int
    text: str
    char_start: int
    char_end: int
    heading_path: str
    token_count: int

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class PageText:
    page: str
    title: str
    text: str
    blocks: tuple[tuple[int, int, str], ...]  # (start, end, heading path)


def pg_pages() -> list[Path]:
    if not PG_HTML_DIR.is_dir():
        raise SystemExit(
            f"{PG_HTML_DIR} is missing: install the Debian package postgresql-doc-15 "
            "(apt-get install postgresql-doc-15)"
        )
    return sorted(PG_HTML_DIR.glob("*.html"))


# -- extraction --------------------------------------------------------------------------------
_TAG = re.compile(r"<(script|style)\b.*?</\1>|<[^>]+>", re.S | re.I)
_BLOCK_END = re.compile(r"</(p|div|h[1-6]|li|dt|dd|pre|tr|table|title)>", re.I)
_TITLE = re.compile(r"<title>(.*?)</title>", re.S | re.I)


def _fallback_extract(raw: bytes) -> PageText | None:
    text = raw.decode("utf-8", errors="replace")
    title_m = _TITLE.search(text)
    title = " ".join(html.unescape(title_m.group(1)).split()) if title_m else ""
    body = _BLOCK_END.sub("\n\n", text)
    body = html.unescape(_TAG.sub(" ", body))
    paras = [" ".join(p.split()) for p in re.split(r"\n\s*\n", body)]
    out, blocks, pos = [], [], 0
    for para in paras:
        if not para:
            continue
        blocks.append((pos, pos + len(para), title))
        out.append(para)
        pos += len(para) + 2
    return PageText("", title, "\n\n".join(out), tuple(blocks)) if out else None


def extract_page(path: Path) -> PageText | None:
    raw = path.read_bytes()
    try:
        from backend.ingest.extract.html import extract_html
    except ImportError:
        got = _fallback_extract(raw)
        return None if got is None else PageText(path.name, got.title, got.text, got.blocks)
    doc = extract_html(raw)
    if not doc.ok:
        return None
    blocks = tuple((b.start, b.end, " > ".join(b.heading_path)) for b in doc.blocks)
    return PageText(path.name, doc.title or path.stem, doc.text, blocks)


# -- chunking ----------------------------------------------------------------------------------
def _fallback_chunks(page: PageText, target_chars: int = 800) -> Iterator[BenchChunk]:
    """Pack whole blocks into ~``target_chars`` chunks (no overlap); split over-long blocks."""
    ordinal, cur_start, cur_end, heading = 0, -1, -1, ""
    pieces: list[tuple[int, int, str]] = []
    for start, end, head in page.blocks:
        while end - start > target_chars:
            cut = page.text.rfind(" ", start, start + target_chars)
            cut = cut if cut > start else start + target_chars
            pieces.append((start, cut, head))
            start = cut + 1 if page.text[cut : cut + 1] == " " else cut
        pieces.append((start, end, head))
    for start, end, head in pieces:
        if cur_start >= 0 and end - cur_start > target_chars:
            text = page.text[cur_start:cur_end]
            yield BenchChunk(page.page, page.title, ordinal, text, cur_start, cur_end, heading,
                             len(text) // 4 + 1)  # fmt: skip
            ordinal, cur_start = ordinal + 1, -1
        if cur_start < 0:
            cur_start, heading = start, head
        cur_end = end
    if cur_start >= 0:
        text = page.text[cur_start:cur_end]
        yield BenchChunk(page.page, page.title, ordinal, text, cur_start, cur_end, heading,
                         len(text) // 4 + 1)  # fmt: skip


def _real_chunker() -> object | None:
    try:
        from backend.embed.manifest import DEFAULT_MODEL_ID
        from backend.ingest.chunking import HFSpanTokenizer
    except ImportError:
        return None
    tok_path = MODELS_DIR / DEFAULT_MODEL_ID / "tokenizer.json"
    return HFSpanTokenizer.from_file(tok_path) if tok_path.is_file() else None


def chunk_page(path: Path, tokenizer: object | None) -> list[BenchChunk]:
    if tokenizer is None:
        page = extract_page(path)
        return [] if page is None else list(_fallback_chunks(page))
    from backend.ingest.chunking import chunk_document
    from backend.ingest.extract.html import extract_html

    doc = extract_html(path.read_bytes())
    if not doc.ok:
        return []
    title = doc.title or path.stem
    return [
        BenchChunk(
            path.name, title, c.ordinal, c.text, c.char_start, c.char_end, " > ".join(c.heading_path), c.token_count
        )
        for c in chunk_document(doc, tokenizer)  # type: ignore[arg-type]
    ]


def postgres_chunks() -> list[BenchChunk]:
    """Every chunk of every page of the PostgreSQL manual, in file-name order."""
    tokenizer = _real_chunker()
    out: list[BenchChunk] = []
    for path in pg_pages():
        out.extend(chunk_page(path, tokenizer))
    return out


def chunker_name() -> str:
    return "backend.ingest.chunking" if _real_chunker() is not None else "bench-fallback"


# -- the 100k real-text set --------------------------------------------------------------------
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\"'])")


def stdlib_paragraphs() -> list[str]:
    root = Path(sysconfig.get_paths()["stdlib"])
    out: list[str] = []
    skip = {"test", "tests", "idlelib", "site-packages", "lib2to3", "dist-packages"}
    for path in sorted(root.rglob("*.py")):
        if skip.intersection(path.parts):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef):
                doc = ast.get_docstring(node)
                for para in re.split(r"\n\s*\n", doc or ""):
                    flat = " ".join(para.split())
                    if len(flat) >= 80:
                        out.append(flat)
    return out


def pg_sentences(chunks: list[BenchChunk]) -> tuple[list[str], list[str], list[str]]:
    """Sentences (≥ 40 chars) of the manual's chunks, consecutive pairs and triples."""
    singles: list[str] = []
    pairs: list[str] = []
    triples: list[str] = []
    for chunk in chunks:
        sents = [" ".join(s.split()) for s in _SENTENCE.split(chunk.text)]
        sents = [s for s in sents if len(s) >= 40]
        singles.extend(sents)
        pairs.extend(" ".join(sents[i : i + 2]) for i in range(len(sents) - 1))
        triples.extend(" ".join(sents[i : i + 3]) for i in range(0, len(sents) - 2, 2))
    return singles, pairs, triples


def real_text_units(n: int, chunks: list[BenchChunk] | None = None) -> list[str]:
    """``n`` distinct real texts (raises if the sources hold fewer), in a fixed order."""
    chunks = postgres_chunks() if chunks is None else chunks
    singles, pairs, triples = pg_sentences(chunks)
    seen: set[str] = set()
    out: list[str] = []
    for source in ([c.text for c in chunks], stdlib_paragraphs(), singles, pairs, triples):
        for text in source:
            if text not in seen:
                seen.add(text)
                out.append(text)
                if len(out) == n:
                    return out
    raise SystemExit(f"only {len(out)} distinct real texts available, wanted {n}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="fill the bench vector cache (resumable)")
    parser.add_argument("--units", type=int, default=100_000, help="real-text vectors wanted")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    from tests.bench.vector_cache import VectorCache, load_embedder

    t0 = time.perf_counter()
    chunks = postgres_chunks()
    print(f"{len(chunks)} chunks from {chunker_name()} in {time.perf_counter() - t0:.1f} s")
    texts = [c.text for c in chunks]
    if args.units:
        texts += real_text_units(args.units, chunks)
    embedder = load_embedder(threads=args.threads)
    with VectorCache.open(embedder.model_id) as cache:
        cache.ensure(embedder, texts, progress=sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Corpora of 10k / 100k / 1M chunks for the search benchmark, built once under tests/bench/out/.

* Texts: :func:`tests.bench.corpus.real_text_units` — the PostgreSQL manual's chunks, Python
  standard-library docstring paragraphs, the manual's sentences and sentence pairs.
* Vectors: the real int8 MiniLM vectors of those texts from the bench vector cache
  (``python -m tests.bench.corpus --units 100000`` fills it; ~1.5-3 h on two busy cores). Where
  the cache lacks a text, or beyond the 100k real texts (the 1M corpus), a vector is a noisy
  copy of a real one: ``normalize(v + e)``, ``e ~ N(0, 0.04^2 I)`` (cosine ~0.8 to its source)
  and the chunk repeats the source text. The report says how many vectors are real.
* Metadata shaped like a desktop corpus: documents of 20 chunks; scope default/work/archive
  (70/20/10 %), mime html/pdf/plain/docx, paths under a few folders, mtimes over three years,
  six tags with 10 % probability each.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from backend.embed.manifest import DEFAULT_MODEL_ID
from backend.store import Store
from backend.store import documents as doc_repo
from tests.bench.corpus import OUT_DIR, real_text_units
from tests.bench.search_index import BenchDoc, data_dir_size, plain_chunks, write_documents

REAL_MAX = 100_000
DOC_CHUNKS = 20
NOISE = 0.04
SCOPES = (("default", 0.7), ("work", 0.2), ("archive", 0.1))
MIMES = ("text/html", "application/pdf", "text/plain",
         "application/vnd.openxmlformats-officedocument.wordprocessingml.document")  # fmt: skip
TAGS = ("project", "finance", "reading", "todo", "draft", "shared")
T_END = 1_767_225_600  # 2026-01-01


@dataclass(frozen=True)
class BuiltCorpus:
    data_dir: Path
    chunks: int
    documents: int
    real_vectors: int
    build_seconds: float
    disk_bytes: int


def _unit(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _real_vectors(texts: list[str], model_id: str) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
    """Cached vectors of ``texts`` (zeros where missing) and which were found."""
    from tests.bench.vector_cache import VectorCache, text_key

    out = np.zeros((len(texts), 384), dtype=np.float32)
    found = np.zeros(len(texts), dtype=bool)
    with VectorCache.open(model_id) as cache:
        have = {str(k): bytes(v) for k, v in cache.conn.execute("SELECT key, vector FROM vectors")}
    for i, t in enumerate(texts):
        blob = have.get(text_key(t))
        if blob is not None:
            out[i] = np.frombuffer(blob, dtype="<f4")
            found[i] = True
    return out, found


def build(n: int, *, model_id: str = DEFAULT_MODEL_ID, out_dir: Path = OUT_DIR) -> BuiltCorpus:
    """The corpus of ``n`` chunks (reused when already built with the same parameters)."""
    root = out_dir / f"search-{n}"
    marker = root / "corpus.json"
    if marker.exists():
        info = json.loads(marker.read_text())
        return BuiltCorpus(root / "data", info["chunks"], info["documents"], info["real_vectors"],
                           info["build_seconds"], data_dir_size(root / "data"))  # fmt: skip
    shutil.rmtree(root, ignore_errors=True)
    t0 = time.perf_counter()
    rng = np.random.default_rng(n)
    base_texts = real_text_units(min(n, REAL_MAX))
    base, found = _real_vectors(base_texts, model_id)
    real = int(found.sum())
    if real < len(base_texts):  # fill cache gaps with noisy copies of real vectors
        donors = np.flatnonzero(found)
        if donors.size == 0:
            raise SystemExit("the bench vector cache is empty: run python -m tests.bench.corpus --units 100000")
        missing = np.flatnonzero(~found)
        src = donors[rng.integers(0, donors.size, missing.size)]
        base[missing] = _unit(base[src] + rng.normal(0, NOISE, (missing.size, 384)).astype(np.float32))
    store = Store(root / "data")
    store.start()
    # bench build only: a big page cache for the writer (random-key indexes such as
    # chunks_sha256 otherwise thrash the default 16 MB once the database outgrows it)
    store.write(lambda c: c.execute("PRAGMA cache_size=-2000000"))
    try:
        docs: list[BenchDoc] = []
        for d in range(0, n, DOC_CHUNKS):
            idx = np.arange(d, min(n, d + DOC_CHUNKS))
            src = idx % len(base_texts)
            vecs = base[src]
            if d >= len(base_texts):
                vecs = _unit(vecs + rng.normal(0, NOISE, vecs.shape).astype(np.float32))
            docs.append(_doc(d // DOC_CHUNKS, [base_texts[i] for i in src], vecs, rng))
            if len(docs) == 500:
                write_documents(store, docs)
                docs = []
                print(f"  {n}: {d + DOC_CHUNKS} chunks written ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
        write_documents(store, docs)
    finally:
        store.stop()
    seconds = time.perf_counter() - t0
    info = {"chunks": n, "documents": -(-n // DOC_CHUNKS), "real_vectors": min(real, n), "build_seconds": seconds}
    marker.write_text(json.dumps(info))
    return BuiltCorpus(root / "data", n, info["documents"], info["real_vectors"], seconds, data_dir_size(root / "data"))


def _doc(i: int, texts: list[str], vectors: npt.NDArray[np.float32], rng: np.random.Generator) -> BenchDoc:
    r = rng.random()
    scope = "default" if r < 0.7 else "work" if r < 0.9 else "archive"
    mime = MIMES[i % len(MIMES)]
    ext = {"text/html": "html", "application/pdf": "pdf", "text/plain": "txt"}.get(mime, "docx")
    folder = f"folder{i % 37}"
    tags = tuple(t for t in TAGS if rng.random() < 0.1)
    mtime = T_END - int(rng.integers(0, 3 * 365 * 86400))
    return BenchDoc(
        doc_repo.new_id(), f"doc{i}.{ext}", f"Document {i}", plain_chunks(texts), vectors,
        path=f"/home/user/{scope}/{folder}/doc{i}.{ext}", scope=scope, mime=mime, mtime_ns=mtime * 10**9,
        tags=tags,
    )  # fmt: skip

"""Retrieval quality on a judged question set over the PostgreSQL 15 manual.

    python tests/bench/eval_retrieval.py [--quick]

1. Index: every page of /usr/share/doc/postgresql-doc-15/html as one document, extracted and
   chunked by ``backend.ingest`` (the same code and settings the ingest pipeline uses), vectors
   from the real int8 MiniLM model (cached in tests/bench/out/vectors-*.sqlite, filled on
   first run), written through the store repositories. Kept in tests/bench/out/eval-index/.
2. Questions: tests/bench/judged_postgres.json — each with the page(s) that answer it.
3. For each question: the keyword, semantic and hybrid rankings of the real SearchService;
   chunk hits are collapsed to pages (first occurrence) and scored at page level:
   hit@1, hit@5, MRR@10, nDCG@10 (binary relevance).
4. Fusion tuning: RRF and convex-combination settings are scored on the raw keyword and
   semantic lists (the same fusion functions the service uses), chosen on the odd-numbered
   questions and reported on the even-numbered ones (held out) and on all.

Prints markdown; writes tests/bench/out/eval_retrieval.json.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO)]

from backend.embed.switching import Fixed  # noqa: E402
from backend.search.fusion import FusionConfig, fuse  # noqa: E402
from backend.search.keyword import KeywordConfig  # noqa: E402
from backend.search.service import SearchConfig, SearchRequest, SearchService  # noqa: E402
from backend.store import Store  # noqa: E402
from tests.bench.corpus import OUT_DIR, chunker_name, postgres_chunks  # noqa: E402
from tests.bench.machine import describe, machine  # noqa: E402
from tests.bench.search_index import pg_documents, write_documents  # noqa: E402
from tests.bench.vector_cache import VectorCache, load_embedder  # noqa: E402

JUDGED = Path(__file__).resolve().with_name("judged_postgres.json")
INDEX_DIR = OUT_DIR / "eval-index"
CHUNK_HITS = 50
PAGES = 10


def build_index(embedder: Any) -> tuple[Store, int]:
    chunks = postgres_chunks()
    marker = INDEX_DIR / "corpus.json"
    fingerprint = {
        "chunks": len(chunks),
        "first": chunks[0].sha256,
        "last": chunks[-1].sha256,
        "model": embedder.model_id,
        "chunker": chunker_name(),
    }
    if not (marker.exists() and json.loads(marker.read_text()) == fingerprint):
        shutil.rmtree(INDEX_DIR, ignore_errors=True)
        with VectorCache.open(embedder.model_id) as cache:
            texts = [c.text for c in chunks]
            cache.ensure(embedder, texts, progress=sys.stderr)
            vectors = cache.get(texts)
        store = Store(INDEX_DIR / "data")
        store.start()
        t0 = time.perf_counter()
        write_documents(store, pg_documents(chunks, vectors))
        print(f"indexed {len(chunks)} chunks in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        store.stop()
        marker.write_text(json.dumps(fingerprint))
    store = Store(INDEX_DIR / "data")
    store.start()
    return store, len(chunks)


def pages_of(ranked: list[int], page_of: dict[int, str], n: int = PAGES) -> list[str]:
    out: list[str] = []
    for cid in ranked:
        p = page_of[cid]
        if p not in out:
            out.append(p)
            if len(out) == n:
                break
    return out


def score(ranking: list[str], relevant: set[str]) -> dict[str, float]:
    first = next((i for i, p in enumerate(ranking[:10]) if p in relevant), None)
    dcg = sum(1 / math.log2(i + 2) for i, p in enumerate(ranking[:10]) if p in relevant)
    idcg = sum(1 / math.log2(i + 2) for i in range(min(len(relevant), 10)))
    return {
        "hit@1": float(first == 0),
        "hit@5": float(first is not None and first < 5),
        "mrr@10": 0.0 if first is None else 1 / (first + 1),
        "ndcg@10": dcg / idcg,
    }


METRICS = ("hit@1", "hit@5", "mrr@10", "ndcg@10")


def mean(rows: list[dict[str, Any]]) -> dict[str, float]:
    return {k: round(sum(r[k] for r in rows) / len(rows), 4) for k in METRICS} if rows else {}


def raw_lists(
    service: SearchService, question: str, depth: int
) -> tuple[list[tuple[int, float]], list[tuple[int, float]], dict[int, str]]:
    page_of: dict[int, str] = {}
    lists = []
    for mode in ("keyword", "semantic"):
        res = service.search(SearchRequest(question, mode, depth, use_cache=False))  # type: ignore[arg-type]
        lists.append([(h["chunk_id"], h["score"]) for h in res["hits"]])
        page_of.update({h["chunk_id"]: h["filename"] for h in res["hits"]})
    return lists[0], lists[1], page_of


FUSIONS = [FusionConfig("rrf", rrf_k=k, semantic_weight=w) for k in (10, 30, 60) for w in (0.5, 1.0, 1.5, 2.0)] + [
    FusionConfig("convex", alpha=a) for a in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
]
KEYWORD = [KeywordConfig(1.0, h, s) for s in ("or", "and_or") for h in (0.5, 1.0, 2.0, 4.0)]
DEPTHS = (51,)  # the service fuses max(offset + k + 1, fuse_depth=50) deep lists: 51 for these 50 hits


def label(cfg: FusionConfig | KeywordConfig) -> str:
    if isinstance(cfg, KeywordConfig):
        return f"{cfg.strategy}, heading weight {cfg.heading_weight}"
    return (
        f"rrf k={cfg.rrf_k:g} w_sem={cfg.semantic_weight:g}" if cfg.method == "rrf" else f"convex alpha={cfg.alpha:g}"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="first 20 questions, no tuning grid")
    args = ap.parse_args()
    report: dict[str, Any] = {"machine": machine()}
    judged = json.loads(JUDGED.read_text())["questions"]
    if args.quick:
        judged = judged[:20]
    embedder = load_embedder()
    store, n_chunks = build_index(embedder)
    try:
        evaluate(store, embedder, judged, report, n_chunks, quick=args.quick)
    finally:
        store.stop()
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "eval_retrieval.json").write_text(json.dumps(report, indent=1))
    print(markdown(report))
    return 0


def evaluate(
    store: Store, embedder: Any, judged: list[dict[str, Any]], report: dict[str, Any], n_chunks: int, *, quick: bool
) -> None:
    base = SearchConfig(cache_size=0)
    service = SearchService(store, Fixed(embedder), base)
    depth = max(CHUNK_HITS + 1, base.fuse_depth)
    per_q: list[dict[str, Any]] = []
    for q in judged:
        kw, sem, page_of = raw_lists(service, q["question"], depth)
        rel = set(q["pages"])
        hyb = service.search(SearchRequest(q["question"], "hybrid", CHUNK_HITS, use_cache=False))
        page_of.update({h["chunk_id"]: h["filename"] for h in hyb["hits"]})
        rankings = {
            "keyword": pages_of([c for c, _ in kw], page_of),
            "semantic": pages_of([c for c, _ in sem], page_of),
            "hybrid": pages_of([h["chunk_id"] for h in hyb["hits"]], page_of),
        }
        per_q.append(
            {
                "id": q["id"],
                "kind": q["kind"],
                "question": q["question"],
                "pages": q["pages"],
                **{m: {"top": r[:5], **score(r, rel)} for m, r in rankings.items()},
            }
        )
    modes = ("keyword", "semantic", "hybrid")
    report["corpus"] = {"pages": 0, "chunks": n_chunks, "chunker": chunker_name(), "questions": len(judged)}
    report["service_config"] = {
        "fusion": label(base.fusion),
        "keyword": label(base.keyword),
        "fuse_depth": base.fuse_depth,
        "oversample": base.knn.oversample,
        "min_candidates": base.knn.min_candidates,
    }
    report["overall"] = {m: mean([r[m] for r in per_q]) for m in modes}
    kinds = sorted({r["kind"] for r in per_q})
    report["by_kind"] = {k: {m: mean([r[m] for r in per_q if r["kind"] == k]) for m in modes} for k in kinds}
    report["questions"] = per_q
    with store.read() as conn:
        report["corpus"]["pages"] = int(conn.execute("SELECT count(*) FROM documents").fetchone()[0])
    if not quick:
        report["tuning"] = tune(store, embedder, judged)


def tune(store: Store, embedder: Any, judged: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Score every (keyword config, fusion, fusion depth) on the raw lists; sorted by the MRR@10
    of the odd-numbered questions (the tuning half)."""
    semantic: dict[int, list[tuple[int, float]]] = {}
    page_of: dict[int, str] = {}
    keyword: dict[tuple[int, int], list[tuple[int, float]]] = {}
    for i, kc in enumerate(KEYWORD):
        svc = SearchService(store, Fixed(embedder), SearchConfig(cache_size=0, keyword=kc))
        for q in judged:
            modes = ("keyword", "semantic") if i == 0 else ("keyword",)
            for mode in modes:
                res = svc.search(SearchRequest(q["question"], mode, 100, use_cache=False))  # type: ignore[arg-type]
                hits = [(h["chunk_id"], h["score"]) for h in res["hits"]]
                page_of.update({h["chunk_id"]: h["filename"] for h in res["hits"]})
                if mode == "semantic":
                    semantic[q["id"]] = hits
                else:
                    keyword[(i, q["id"])] = hits
    rows = []
    for i, kc in enumerate(KEYWORD):
        for cfg in FUSIONS:
            for depth in DEPTHS:
                scores: dict[str, list[dict[str, float]]] = {"tune": [], "held_out": [], "all": []}
                for q in judged:
                    d = max(depth, CHUNK_HITS + 1)
                    fused = fuse(keyword[(i, q["id"])][:d], semantic[q["id"]][:d], cfg)[:CHUNK_HITS]
                    s = score(pages_of([c for c, _ in fused], page_of), set(q["pages"]))
                    scores["all"].append(s)
                    scores["tune" if q["id"] % 2 else "held_out"].append(s)
                rows.append(
                    {
                        "keyword": label(kc),
                        "fusion": label(cfg),
                        "depth": depth,
                        **{k: mean(v) for k, v in scores.items()},
                    }
                )
    rows.sort(key=lambda r: (-r["tune"]["mrr@10"], -r["tune"]["ndcg@10"]))
    return rows


def _row(name: str, m: dict[str, float]) -> str:
    return f"| {name} | {m['hit@1']:.3f} | {m['hit@5']:.3f} | {m['mrr@10']:.3f} | {m['ndcg@10']:.3f} |"


def markdown(r: dict[str, Any]) -> str:
    c = r["corpus"]
    out = [
        "## Retrieval quality — PostgreSQL 15 manual, judged questions",
        "",
        f"Machine: {describe(r['machine'])}. Corpus: {c['pages']} pages, {c['chunks']} chunks "
        f"({c['chunker']}); {c['questions']} questions. Page-level relevance.",
        f"Service config: fusion {r['service_config']['fusion']}, keyword {r['service_config']['keyword']}, "
        f"fusion depth {r['service_config']['fuse_depth']}.",
        "",
        "| retriever | hit@1 | hit@5 | MRR@10 | nDCG@10 |",
        "|---|---|---|---|---|",
        *[_row(m, v) for m, v in r["overall"].items()],
        "",
        "By question kind (MRR@10): keyword / semantic / hybrid",
        "",
        "| kind | n | keyword | semantic | hybrid |",
        "|---|---|---|---|---|",
    ]
    for kind, v in r["by_kind"].items():
        n = sum(1 for q in r["questions"] if q["kind"] == kind)
        out.append(
            f"| {kind} | {n} | {v['keyword']['mrr@10']:.3f} | {v['semantic']['mrr@10']:.3f} | {v['hybrid']['mrr@10']:.3f} |"
        )
    if "tuning" in r:
        out += [
            "",
            "Tuning (MRR@10): chosen on odd-numbered questions (tune), reported on even ones (held out);",
            "top 12 of the grid:",
            "",
            "| keyword | fusion | depth | tune | held out | all | all nDCG@10 |",
            "|---|---|---|---|---|---|---|",
        ]
        for row in r["tuning"][:12]:
            out.append(
                f"| {row['keyword']} | {row['fusion']} | {row['depth']} | {row['tune']['mrr@10']:.3f} | "
                f"{row['held_out']['mrr@10']:.3f} | {row['all']['mrr@10']:.3f} | {row['all']['ndcg@10']:.3f} |"
            )
    return "\n".join(out)


if __name__ == "__main__":
    raise SystemExit(main())

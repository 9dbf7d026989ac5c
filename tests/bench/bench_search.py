"""Search benchmark (``make bench``; a script, not a pytest test).

    python tests/bench/bench_search.py [--quick] [--scales 10000,100000,1000000]

For each corpus size (tests/bench/search_corpus.py; built once, kept in tests/bench/out/):

* **KNN stage** — ``SemanticIndex.search`` (sync of the in-memory binary mirror with the vec0
  table, Hamming scan, float rescoring read from SQLite), k=10, p50/p95, next to a numpy exact
  brute-force scan (``X @ q`` + argpartition, one BLAS thread) of the same float32 matrix in the
  same run, and vec0's own bit KNN (k=10 and k=400) for reference; recall@10 against the exact
  scan; a sweep of the candidate count (what the oversampling factor was chosen from);
  filtered KNN (scope, tag, one document) with its hit counts.
* **End to end** — a real ``docsidecar serve`` on the corpus; ``POST /v1/search`` hybrid k=10
  with distinct queries and the result cache off, 1 and 8 concurrent clients: p50/p95/p99 and
  requests/s, next to the query-embedding time alone (same model, same thread count, query
  cache off) measured in this process; server RSS; index size on disk.

Prints markdown; writes tests/bench/out/search.json. Numbers on a shared machine are
provisional; the load average is reported.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # the exact baseline: one core, like our scan
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import json
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO)]

import httpx  # noqa: E402
import psutil  # noqa: E402

from backend.embed.onnx_embedder import default_threads  # noqa: E402
from backend.search.filters import SearchFilters, make_filters  # noqa: E402
from backend.search.knn import KnnConfig, KnnStats, SemanticIndex  # noqa: E402
from backend.store import Store  # noqa: E402
from backend.store import vectors as vector_repo  # noqa: E402
from tests.bench.corpus import OUT_DIR, postgres_chunks  # noqa: E402
from tests.bench.machine import describe, machine  # noqa: E402
from tests.bench.search_corpus import build  # noqa: E402
from tests.bench.vector_cache import VectorCache, load_embedder  # noqa: E402
from tests.helpers.process import start_sidecar  # noqa: E402

JUDGED = Path(__file__).resolve().with_name("judged_postgres.json")
# (Hamming-nearest kept, rescored exactly); equal numbers = no asymmetric step in between
SWEEP = ((100, 100), (200, 200), (400, 400), (800, 800), (1000, 50), (1000, 100), (2000, 100), (2000, 200), (4000, 200))
TOKEN = "bench-token-0123456789abcdefghijklmnopqrstuvwxyz"


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return round(s[min(len(s) - 1, int(q / 100 * len(s)))], 3)


def summary(ms: list[float]) -> dict[str, float]:
    return {"p50": pct(ms, 50), "p95": pct(ms, 95), "p99": pct(ms, 99), "mean": round(statistics.fmean(ms), 3),
            "n": len(ms)}  # fmt: skip


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return (time.perf_counter() - t0) * 1000, out


def query_texts(n: int) -> list[str]:
    """Distinct short queries: the judged questions, then 3-9 word windows of manual chunks."""
    out = [q["question"] for q in json.loads(JUDGED.read_text())["questions"]]
    seen = set(out)
    for i, c in enumerate(postgres_chunks()[::3]):
        words = c.text.split()
        start = 3 + i % 5
        q = " ".join(words[start : start + 3 + i % 7])
        if len(q) > 8 and q not in seen:
            seen.add(q)
            out.append(q)
        if len(out) >= n:
            break
    return out[:n]


def query_vectors(texts: list[str]) -> npt.NDArray[np.float32]:
    embedder = load_embedder()
    with VectorCache.open(embedder.model_id) as cache:
        cache.conn.set_busy_timeout(120_000)  # the cache may be filling in another process
        cache.ensure(embedder, texts)
        return cache.get(texts)


def load_matrix(store: Store) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    with store.read() as conn:
        rows = conn.execute("SELECT chunk_id, vector FROM embeddings ORDER BY chunk_id").fetchall()
    ids = np.fromiter((int(r[0]) for r in rows), dtype=np.int64, count=len(rows))
    matrix = np.frombuffer(b"".join(bytes(r[1]) for r in rows), dtype="<f4").reshape(len(rows), -1)
    return ids, np.ascontiguousarray(matrix, dtype=np.float32)


def knn_stage(store: Store, qvecs: npt.NDArray[np.float32], quick: bool) -> dict[str, Any]:
    ids, matrix = load_matrix(store)
    out: dict[str, Any] = {"vectors": len(ids)}
    sem = SemanticIndex(KnnConfig())
    with store.read() as conn:
        index = vector_repo.active_model(conn)
        assert index is not None
        cold, _ = timed(lambda: sem.warm(conn, index))
    mirror = sem.mirror(index)
    out["mirror_load_ms"] = round(cold, 1)
    out["mirror_bytes"] = mirror.memory_bytes() if mirror else None
    exact_ms, ours_ms, recalls = [], [], []
    truth = []
    for q in qvecs:
        t, top = timed(lambda q=q: np.argpartition(-(matrix @ q), 10)[:10])
        exact_ms.append(t)
        truth.append({int(ids[i]) for i in top})
    stats = KnnStats()
    for q, want in zip(qvecs, truth, strict=True):
        with store.read() as conn:
            t, hits = timed(lambda conn=conn, q=q: sem.search(conn, index, q, 10, SearchFilters(), stats))
        ours_ms.append(t)
        recalls.append(len(want & {c for c, _ in hits}) / 10)
    out["numpy_exact_ms"] = summary(exact_ms)
    out["knn_ms"] = summary(ours_ms)
    out["knn_vs_numpy_p50"] = round(out["knn_ms"]["p50"] / out["numpy_exact_ms"]["p50"], 3)
    out["knn_vs_numpy_p95"] = round(out["knn_ms"]["p95"] / out["numpy_exact_ms"]["p95"], 3)
    out["recall_at_10"] = round(statistics.fmean(recalls), 4)
    out["candidates"] = stats.candidates
    cfg = KnnConfig()
    out["config"] = {"coarse": max(10 * cfg.coarse_oversample, cfg.min_coarse), "exact": stats.candidates}
    out["sweep"] = sweep(store, index, qvecs[: 60 if quick else 150], truth)
    out["vec0"] = vec0_native(store, index, qvecs[: 10 if quick else 30])
    out["filtered"] = filtered(store, sem, index, qvecs[:30])
    return out


def sweep(store: Store, index: Any, qvecs: npt.NDArray[np.float32], truth: list[set[int]]) -> list[dict[str, Any]]:
    rows = []
    for coarse, cands in SWEEP:
        sem = SemanticIndex(KnnConfig(coarse_oversample=1, min_coarse=coarse, oversample=1, min_candidates=cands))
        ms, rec = [], []
        for q, want in zip(qvecs, truth, strict=False):
            with store.read() as conn:
                t, hits = timed(lambda conn=conn, q=q, sem=sem: sem.search(conn, index, q, 10, SearchFilters()))
            ms.append(t)
            rec.append(len(want & {c for c, _ in hits}) / 10)
        rows.append(
            {
                "coarse": coarse,
                "candidates": cands,
                "recall_at_10": round(statistics.fmean(rec), 4),
                "p50_ms": pct(ms, 50),
            }
        )
    return rows


def vec0_native(store: Store, index: Any, qvecs: npt.NDArray[np.float32]) -> dict[str, Any]:
    out = {}
    for k in (10, 400):
        ms = []
        for q in qvecs:
            with store.read() as conn:
                t, _ = timed(lambda conn=conn, q=q, k=k: conn.execute(
                    f"SELECT chunk_id FROM {index.table} WHERE embedding MATCH vec_bit(?) AND k = ?",
                    (vector_repo.quantize(q).tobytes(), k)).fetchall())  # fmt: skip
            ms.append(t)
        out[f"k{k}_p50_ms"] = pct(ms, 50)
    return out


def filtered(store: Store, sem: SemanticIndex, index: Any, qvecs: npt.NDArray[np.float32]) -> dict[str, Any]:
    with store.read() as conn:
        one_doc = str(conn.execute("SELECT id FROM documents ORDER BY rowid LIMIT 1 OFFSET 7").fetchone()[0])
    cases = {
        "scope=archive (~10%)": make_filters(scopes=["archive"]),
        "tag=finance (~10%)": make_filters(tags=["finance"]),
        "pdf modified in 2025": make_filters(
            mime_types=["application/pdf"], modified_after=1_735_689_600, modified_before=1_767_225_600
        ),
        "one document": make_filters(document_ids=[one_doc]),
    }
    out = {}
    for name, f in cases.items():
        ms, counts = [], []
        for q in qvecs:
            with store.read() as conn:
                t, hits = timed(lambda conn=conn, q=q, f=f: sem.search(conn, index, q, 10, f))
            ms.append(t)
            counts.append(len(hits))
        out[name] = {"p50_ms": pct(ms, 50), "p95_ms": pct(ms, 95), "min_hits": min(counts)}
    return out


def embed_alone(texts: list[str], threads: int) -> dict[str, float]:
    from backend.embed.manifest import DEFAULT_MODEL_ID, find_manifest
    from backend.embed.onnx_embedder import OnnxEmbedder
    from backend.resources import default_models_dir

    models = default_models_dir()
    manifest = find_manifest(models, DEFAULT_MODEL_ID)
    emb = OnnxEmbedder.load(manifest, manifest.dir_in(models), threads=threads, query_cache_size=0)
    for t in texts[:10]:
        emb.embed_query(t)
    return summary([timed(lambda t=t: emb.embed_query(t))[0] for t in texts])


def http_bench(data_dir: Path, texts: list[str], clients: int, per_client: int) -> dict[str, Any]:
    proc = start_sidecar(data_dir, "--port", "0", token=TOKEN)
    try:
        base = proc.base_url
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=base, headers=headers, timeout=60) as c:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                comps = c.get("/v1/status").json()["components"]
                if (
                    comps["embedding"]["state"] == "ready"
                    and (comps["search"].get("detail") or {}).get("mirror") == "ready"
                ):
                    break
                time.sleep(0.2)
            for t in texts[:20]:  # warm-up (different texts from the measured ones below)
                c.post("/v1/search", json={"query": t + " warm", "mode": "hybrid", "k": 10, "cache": False})
        results: dict[str, Any] = {}
        offset = 20
        for n in (1, clients):
            lat: list[float] = []
            server: list[dict[str, float]] = []
            lock = threading.Lock()
            chunks = [texts[offset + i * per_client : offset + (i + 1) * per_client] for i in range(n)]
            offset += n * per_client

            def worker(
                qs: list[str], lat: list[float] = lat, server: list[dict[str, float]] = server, lock: Any = lock
            ) -> None:
                with httpx.Client(base_url=base, headers=headers, timeout=60) as c:
                    for q in qs:
                        t, r = timed(
                            lambda q=q: c.post(
                                "/v1/search", json={"query": q, "mode": "hybrid", "k": 10, "cache": False}
                            )
                        )
                        r.raise_for_status()
                        with lock:
                            lat.append(t)
                            server.append(r.json()["timings_ms"])

            t0 = time.perf_counter()
            threads = [threading.Thread(target=worker, args=(qs,)) for qs in chunks]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            wall = time.perf_counter() - t0
            results[f"{n}_client{'s' if n > 1 else ''}"] = {
                **summary(lat),
                "requests_per_s": round(len(lat) / wall, 1),
                "server_median_ms": {
                    k: round(statistics.median(s.get(k, 0.0) for s in server), 3)
                    for k in ("embed_ms", "keyword_ms", "semantic_ms")
                },
            }
        p = psutil.Process(proc.proc.pid)
        results["server_rss_mb"] = round(p.memory_info().rss / 2**20, 1)
        status = Path(f"/proc/{proc.proc.pid}/status")
        if status.exists():  # Linux: split RSS into private memory and mapped database pages
            fields = dict(ln.split(":", 1) for ln in status.read_text().splitlines() if ":" in ln)
            for key, name in (
                ("VmHWM", "server_peak_rss_mb"),
                ("RssAnon", "server_rss_anon_mb"),
                ("RssFile", "server_rss_file_mb"),
            ):
                if key in fields:
                    results[name] = round(int(fields[key].split()[0]) / 1024, 1)
        return results
    finally:
        proc.stop()


def table_sizes(data_dir: Path) -> dict[str, float]:
    import apsw

    conn = apsw.Connection(str(data_dir / "docsidecar.db"), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        rows = conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall()
    except apsw.SQLError:
        return {}
    finally:
        pass
    groups: dict[str, float] = {}
    for name, size in rows:
        key = ("fts5" if str(name).startswith("chunks_fts") else "vec0 (bits)" if str(name).startswith("vec_chunks")
               else "embeddings (float32)" if str(name).startswith("embeddings") else
               "chunks" if str(name).startswith(("chunks", "sqlite_autoindex_chunks")) else "other")  # fmt: skip
        groups[key] = groups.get(key, 0.0) + int(size) / 2**20
    conn.close()
    return {k: round(v, 1) for k, v in sorted(groups.items())}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="10k only, fewer queries")
    ap.add_argument("--scales", default=None, help="comma-separated corpus sizes (default 10000,100000,1000000)")
    ap.add_argument("--clients", type=int, default=8)
    args = ap.parse_args()
    scales = [int(s) for s in (args.scales or ("10000" if args.quick else "10000,100000,1000000")).split(",")]
    n_q = 60 if args.quick else 200
    per_client = 15 if args.quick else 40
    report: dict[str, Any] = {"machine": machine(), "scales": {}}
    texts = query_texts(20 + per_client * (1 + args.clients) + 10)
    qvecs = query_vectors(texts[:n_q])
    threads = default_threads()
    report["query_embedding_ms"] = embed_alone(texts[-200:] if len(texts) > 200 else texts, threads)
    report["embed_threads"] = threads
    for n in scales:
        corpus = build(n)
        store = Store(corpus.data_dir)
        store.start()
        try:
            knn = knn_stage(store, qvecs, args.quick)
        finally:
            store.stop()
        http = http_bench(corpus.data_dir, texts, args.clients, per_client)
        emb_p95 = report["query_embedding_ms"]["p95"]
        report["scales"][str(n)] = {
            "chunks": corpus.chunks, "documents": corpus.documents, "real_vectors": corpus.real_vectors,
            "build_s": round(corpus.build_seconds, 1), "disk_mb": round(corpus.disk_bytes / 2**20, 1),
            "tables_mb": table_sizes(corpus.data_dir), "knn": knn, "http": http,
            "hybrid_p95_vs_embedding_p95": round(http["1_client"]["p95"] / emb_p95, 2),
        }  # fmt: skip
        print(f"done {n}", file=sys.stderr, flush=True)
    report["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "search.json").write_text(json.dumps(report, indent=1))
    print(markdown(report))
    return 0


def markdown(r: dict[str, Any]) -> str:
    e = r["query_embedding_ms"]
    out = [
        "## Search benchmark",
        "",
        f"Machine: {describe(r['machine'])}; load average at end {r['load_avg_end']}.",
        f"Query embedding alone (int8 MiniLM, {r['embed_threads']} threads, no cache): p50 {e['p50']} ms, p95 {e['p95']} ms.",
        "",
        "### KNN stage (k=10) vs numpy exact scan of the same float32 matrix (1 thread), same run",
        "",
        "| chunks | real vectors | KNN p50 | KNN p95 | numpy p50 | numpy p95 | ratio p50 | ratio p95 | recall@10 | coarse→exact | vec0 k=10 | vec0 k=400 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n, s in r["scales"].items():
        k = s["knn"]
        out.append(
            f"| {n} | {s['real_vectors']} | {k['knn_ms']['p50']} | {k['knn_ms']['p95']} | {k['numpy_exact_ms']['p50']} | "
            f"{k['numpy_exact_ms']['p95']} | {k['knn_vs_numpy_p50']} | {k['knn_vs_numpy_p95']} | {k['recall_at_10']} | "
            f"{k['config']['coarse']}→{k['config']['exact']} | {k['vec0']['k10_p50_ms']} | {k['vec0']['k400_p50_ms']} |"
        )
    out += [
        "",
        "Candidate sweep: Hamming-nearest kept → rescored with float vectors (a→a: no asymmetric step);",
        "recall@10 vs the exact float scan / KNN p50 ms:",
        "",
        "| chunks | "
        + " | ".join(f"{row['coarse']}→{row['candidates']}" for row in next(iter(r["scales"].values()))["knn"]["sweep"])
        + " |",
        "|---|" + "---|" * len(next(iter(r["scales"].values()))["knn"]["sweep"]),
    ]
    for n, s in r["scales"].items():
        out.append(
            f"| {n} | " + " | ".join(f"{row['recall_at_10']:.3f} / {row['p50_ms']}" for row in s["knn"]["sweep"]) + " |"
        )
    out += ["", "Filtered KNN (k=10; p50 / p95 ms, fewest hits over the queries):", ""]
    names = list(next(iter(r["scales"].values()))["knn"]["filtered"])
    out += ["| chunks | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for n, s in r["scales"].items():
        f = s["knn"]["filtered"]
        out.append(
            f"| {n} | " + " | ".join(f"{f[x]['p50_ms']} / {f[x]['p95_ms']} ({f[x]['min_hits']})" for x in names) + " |"
        )
    out += [
        "",
        "### End to end: POST /v1/search, hybrid, k=10, distinct queries, result cache off",
        "",
        "| chunks | clients | p50 ms | p95 ms | p99 ms | req/s | server embed / keyword / semantic (median ms) | p95 / embedding p95 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n, s in r["scales"].items():
        for key in ("1_client", next(k for k in s["http"] if k.endswith("clients"))):
            h = s["http"][key]
            sm = h["server_median_ms"]
            ratio = s["hybrid_p95_vs_embedding_p95"] if key == "1_client" else ""
            out.append(
                f"| {n} | {key.split('_')[0]} | {h['p50']} | {h['p95']} | {h['p99']} | {h['requests_per_s']} | "
                f"{sm['embed_ms']} / {sm['keyword_ms']} / {sm['semantic_ms']} | {ratio} |"
            )
    out += [
        "",
        "### Size and memory",
        "",
        "| chunks | disk MB | tables MB | server RSS MB (peak) | mirror MB | mirror cold load ms |",
        "|---|---|---|---|---|---|",
    ]
    for n, s in r["scales"].items():
        k, h = s["knn"], s["http"]
        tables = ", ".join(f"{a} {b}" for a, b in s["tables_mb"].items())
        out.append(
            f"| {n} | {s['disk_mb']} | {tables} | {h['server_rss_mb']} ({h.get('server_peak_rss_mb')}) | "
            f"{round((k['mirror_bytes'] or 0) / 2**20, 1)} | {k['mirror_load_ms']} |"
        )
    return "\n".join(out)


if __name__ == "__main__":
    raise SystemExit(main())

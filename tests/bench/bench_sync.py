"""Sync benchmark (``make bench``; a script, not a pytest test).

    python tests/bench/bench_sync.py [--quick] [--chunks N] [--per-doc N]

Against the Supabase test gateway (tests/supabase_gateway: a Python HTTP stand-in running the
real sync/migrations on a private PostgreSQL with pgvector), measures:

* **push**: one device pushes N chunks with 384-d embeddings (docs of ``--per-doc`` chunks,
  files first, then chunks, then rows) — chunks/s of the whole engine run;
* **initial pull**: a fresh device pulls the same N chunks (default 100k) and applies them
  (documents, chunks, FTS rows, float vectors and the binary vec0 index) — chunks/s;
* **re-embedding pull**: a small set whose vectors come from another model, so the chunks are
  embedded locally by the ``embed_missing`` job (what reusing remote vectors saves);

with the share of wall time spent in HTTP (request → response, including the gateway and
PostgreSQL), SQLite (local reads and writes), token counting, embedding and the rest (JSON
building and parsing in the client). Reference measured in the same run: the raw RPC calls of
the same pull without applying anything (the floor the engine sits on), and the bare embedder
on the re-embedded texts. The gateway is not Supabase: absolute HTTP numbers are this machine's
stand-in, the client-side shares are the point. Prints markdown; writes JSON to
``tests/bench/out/sync.json``.

Observed (2-core VM): the SQLite share of the pull grows with the local table size. Inserting
5000 chunks takes ~0.25 s into an empty store but ~5 s at 55k chunks; the same inserts stay
flat without the ``chunks_sha256`` index, and flat without the FTS insert trigger — it is the
two together (random index keys plus FTS segment writes per transaction), not sync code.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(Path(__file__).resolve().parent)]

import numpy as np  # noqa: E402
from machine import describe, machine  # noqa: E402

from backend.services import Services  # noqa: E402
from backend.settings import Settings  # noqa: E402
from backend.store import chunks as chunk_repo  # noqa: E402
from backend.store import documents as doc_repo  # noqa: E402
from backend.store import vectors as vector_repo  # noqa: E402
from backend.store.chunks import NewChunk  # noqa: E402
from sync.versions import Version, chunk_uuid  # noqa: E402
from tests.supabase_gateway import Gateway, GatewayConfig, PgCluster  # noqa: E402

OUT = REPO / "tests" / "bench" / "out" / "sync.json"
WORDS = (
    "sync", "vector", "chunk", "embedding", "database", "document", "search", "offline", "cloud", "device",
    "conflict", "version", "cursor", "storage", "upload", "token", "refresh", "retry", "batch", "index", "query",
    "model",
)  # fmt: skip
SETTINGS = {"sync_auto": False, "sync_backoff_initial_s": 0.01, "sync_backoff_max_s": 0.2}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def text_for(rng: np.random.Generator, n_words: int = 110) -> str:
    return " ".join(rng.choice(WORDS, n_words))


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, 384)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def populate(sv: Services, n_chunks: int, per_doc: int, seed: int = 7) -> int:
    """Indexed documents written straight through the repositories (as the pipeline leaves
    them: file in the blob store, chunks, vectors, status embedded, an outbox row each)."""
    rng = np.random.default_rng(seed)
    model = sv.settings.model_id
    docs = 0
    for start in range(0, n_chunks, per_doc):
        count = min(per_doc, n_chunks - start)
        texts = [text_for(rng) for _ in range(count)]
        body = "\n\n".join(texts).encode()
        key, size = sv.ingest.blobs.put_file(io.BytesIO(body), 1 << 30)
        vecs = unit(rng, count)

        def write(
            c: Any, texts: list[str] = texts, key: str = key, size: int = size, vecs: np.ndarray = vecs, n: int = start
        ) -> None:
            doc_id = doc_repo.new_id()
            doc_repo.insert(c, doc_id=doc_id, scope="default", source="upload", filename=f"doc-{n}.txt",
                            size=size, sha256=key, blob_key=key, mime="text/plain")  # fmt: skip
            offset, new = 0, []
            for i, t in enumerate(texts):
                new.append(NewChunk(i, t, hashlib.sha256(t.encode()).hexdigest(), offset, offset + len(t), None,
                                    (), 120))  # fmt: skip
                offset += len(t) + 2
            ids = chunk_repo.insert_chunks(c, doc_id, new)
            vector_repo.put_vectors(c, model, list(zip(ids, vecs, strict=True)))
            doc_repo.update(c, doc_id, status="embedded", indexed_sha256=key, chunk_count=len(texts), title=doc_id)

        sv.store.write(write)
        docs += 1
    return docs


BULK_SQL = """
with u as (select %(user)s::uuid as user_id)
insert into public.documents (id, user_id, scope, title, filename, mime, size, sha256, hlc, origin_device)
select gen_random_uuid(), u.user_id, 'default', 'bulk ' || g, 'bulk-' || g || '.txt', 'text/plain', 60000,
       encode(sha256(g::text::bytea), 'hex'), %(hlc)s + g, 'bulk-loader'
  from u, generate_series(1, %(docs)s) g
"""
BULK_CHUNKS_SQL = """
insert into public.chunks (id, document_id, user_id, doc_hlc, doc_device, ordinal, text, char_start, char_end,
                           model_id, embedding)
select gen_random_uuid(), d.id, d.user_id, d.hlc, d.origin_device, o,
       array_to_string(array(select (%(words)s::text[])[1 + floor(random() * %(nwords)s)::int]
                             from generate_series(1, 110) where o >= 0), ' '),
       0, 700, %(model)s,
       extensions.l2_normalize(array(select random() - 0.5 from generate_series(1, 384) where o >= 0)::real[]
                               ::extensions.vector)
  from public.documents d, generate_series(0, %(per_doc)s - 1) o
 where d.user_id = %(user)s::uuid
"""


def bulk_load(cluster: PgCluster, db: str, user_id: str, n_chunks: int, per_doc: int, model: str) -> float:
    """Put ``n_chunks`` chunks of ``user_id`` in the cloud directly (as the database owner).
    The HNSW index is dropped first: building it row by row would take longer than the whole
    benchmark, and pulling never uses it (the push measurement ran with it)."""
    t0 = time.perf_counter()
    with cluster.connect(db, autocommit=True) as conn:
        conn.execute("drop index if exists public.chunks_embedding_hnsw")
        params = {"user": user_id, "docs": n_chunks // per_doc, "per_doc": per_doc, "model": model,
                  "hlc": int(time.time() * 1000) << 16, "words": list(WORDS), "nwords": len(WORDS)}  # fmt: skip
        conn.execute(BULK_SQL, params)
        conn.execute(BULK_CHUNKS_SQL, params)
        conn.execute("analyze public.documents")
        conn.execute("analyze public.chunks")
    return time.perf_counter() - t0


def device(root: Path, name: str, **extra: Any) -> Services:
    sv = Services(Settings.load({}, {"data_dir": root / name, **SETTINGS, **extra}))
    sv.start()
    assert sv.embedding.wait_ready(120)
    return sv


def shares(wall: float, parts: dict[str, float]) -> dict[str, float]:
    out = {k: round(v, 3) for k, v in parts.items()}
    out["other"] = round(max(0.0, wall - sum(parts.values())), 3)
    return out


def measure_run(sv: Services) -> dict[str, Any]:
    remote = sv.sync.remote
    assert remote is not None
    http0, tok0 = remote.http.stats.http_seconds, sv.sync.local.tokenize_seconds
    req0 = remote.http.stats.requests
    t0 = time.perf_counter()
    report = sv.sync.run_once()
    wall = time.perf_counter() - t0
    http = remote.http.stats.http_seconds - http0
    tokenize = sv.sync.local.tokenize_seconds - tok0
    local = report["seconds"]["local"] - tokenize
    return {"report": report, "wall_s": round(wall, 3), "requests": remote.http.stats.requests - req0,
            "seconds": shares(wall, {"http": http, "sqlite": local, "tokenize": tokenize, "embedding": 0.0})}  # fmt: skip


def raw_pull(sv: Services, page: int = 500) -> tuple[float, int]:
    """The floor: the same RPC pages, decoded, nothing applied."""
    remote = sv.sync.remote
    assert remote is not None
    t0 = time.perf_counter()
    cursor, n = None, 0
    while True:
        rows, cursor, more = remote.pull(cursor, page)
        live = [r for r in rows if not r.get("deleted")]
        for start in range(0, len(live), 50):
            n += sum(len(c) for c in remote.pull_chunks(live[start : start + 50]).values())
        if not more:
            return time.perf_counter() - t0, n


def reembed_case(gw: Gateway, email: str, password: str, root: Path, n_chunks: int) -> dict[str, Any]:
    """Chunks whose vectors come from another model: pulled, then embedded locally."""
    pusher = device(root, "other-model-pusher")
    pusher.sync.configure(gw.url, gw.anon_key, email=email, password=password)
    remote = pusher.sync.remote
    assert remote is not None
    rng = np.random.default_rng(11)
    per_doc = 50
    for start in range(0, n_chunks, per_doc):
        doc_id, v = str(uuid.uuid4()), Version(int(time.time() * 1000) << 16, "other-device")
        texts = [text_for(rng, 60) for _ in range(per_doc)]
        vecs = unit(rng, per_doc)
        chunks = [{"id": chunk_uuid(doc_id, v, i), "ordinal": i, "text": t, "char_start": 0, "char_end": len(t),
                   "page": None, "heading_path": [], "model_id": "some-other-model", "embedding": vecs[i].tolist()}
                  for i, t in enumerate(texts)]  # fmt: skip
        remote.push([
            {"change_id": str(uuid.uuid4()), "kind": "chunks", "document_id": doc_id, "doc_hlc": v.hlc,
             "doc_device": v.device, "chunks": chunks},
            {"change_id": str(uuid.uuid4()), "kind": "document", "base_hlc": None, "base_device": None,
             "document": {"id": doc_id, "hlc": v.hlc, "origin_device": v.device, "filename": f"o{start}.txt",
                          "sha256": hashlib.sha256(str(start).encode()).hexdigest(), "deleted": False}},
        ])  # fmt: skip
    pusher.stop()
    sv = device(root, "reembed", sync_download="on_demand")
    sv.sync.configure(gw.url, gw.anon_key, email=email, password=password)
    t0 = time.perf_counter()
    run = measure_run(sv)
    while True:  # the embed_missing job gives every pulled chunk a vector of the local model
        with sv.store.read() as c:
            left = c.execute("SELECT count(*) FROM chunks c LEFT JOIN embeddings e ON e.chunk_id = c.id "
                             "AND e.model_id = ? WHERE e.chunk_id IS NULL", (sv.settings.model_id,)).fetchone()[0]  # fmt: skip
        if left == 0:
            break
        time.sleep(0.05)
    total = time.perf_counter() - t0
    embed_wall = total - run["wall_s"]
    with sv.store.read() as c:
        texts = [r[0] for r in c.execute("SELECT text FROM chunks ORDER BY id")]
    t1 = time.perf_counter()
    sv.embedding.embedder.embed(texts)
    bare = time.perf_counter() - t1
    sv.stop()
    seconds = dict(run["seconds"])
    seconds["embedding"] = round(embed_wall, 3)
    return {"chunks": len(texts), "pull_s": run["wall_s"], "embed_job_s": round(embed_wall, 3),
            "wall_s": round(total, 3), "seconds": seconds, "reference_bare_embed_s": round(bare, 3)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="2k pushed / 5k pulled chunks instead of 10k / 100k")
    ap.add_argument("--push-chunks", type=int, default=None)
    ap.add_argument("--pull-chunks", type=int, default=None)
    ap.add_argument("--per-doc", type=int, default=100)
    args = ap.parse_args()
    n = args.push_chunks or (2_000 if args.quick else 10_000)
    n_pull = args.pull_chunks or (5_000 if args.quick else 100_000)
    m = machine()
    tmp = tempfile.TemporaryDirectory(prefix="bench-sync-")
    root = Path(tmp.name)
    cluster = PgCluster()
    cluster.start()
    db = cluster.create_database()
    gw = Gateway(GatewayConfig(database_uri=cluster.uri(db, "authenticator"), admin_uri=cluster.uri(db),
                               pool_size=4))  # fmt: skip
    gw.start()
    email, password = "bench@example.com", "bench-password"
    gw.create_user(email, password)
    result: dict[str, Any] = {"chunks": n, "pull_chunks": n_pull, "per_doc": args.per_doc}
    try:
        log(f"populating {n} chunks ...")
        a = device(root, "a")
        t = time.perf_counter()
        result["docs"] = populate(a, n, args.per_doc)
        result["populate_s"] = round(time.perf_counter() - t, 1)
        a.sync.configure(gw.url, gw.anon_key, email=email, password=password)
        log("push ...")
        push = measure_run(a)
        push["chunks_per_s"] = round(push["report"]["chunks_pushed"] / push["wall_s"], 1)
        result["push"] = push
        model = a.settings.model_id
        a.stop()
        log(f"loading {n_pull} chunks into the cloud ...")
        puller = gw.create_user("pull-" + email, password)
        result["bulk_load_s"] = round(bulk_load(cluster, db, puller, n_pull, args.per_doc, model), 1)
        log("initial pull ...")
        b = device(root, "b", sync_download="on_demand")
        b.sync.configure(gw.url, gw.anon_key, email="pull-" + email, password=password)
        pull = measure_run(b)
        pull["chunks_per_s"] = round(pull["report"]["chunks_pulled"] / pull["wall_s"], 1)
        floor_s, floor_n = raw_pull(b)
        pull["reference_raw_rpc_s"] = round(floor_s, 3)
        pull["reference_chunks"] = floor_n
        pull["engine_vs_raw_rpc"] = round(pull["wall_s"] / floor_s, 2)
        result["pull"] = pull
        with b.store.read() as c:
            result["pulled_local_chunks"] = c.execute("SELECT count(*) FROM chunks").fetchone()[0]
        b.stop()
        log("re-embedding pull ...")
        gw.create_user("re-" + email, password)
        result["reembed"] = reembed_case(gw, "re-" + email, password, root, 200 if args.quick else 1000)
    finally:
        gw.stop()
        cluster.stop()
        tmp.cleanup()
    report = {"machine": m, "result": result, "load_avg_end": list(os.getloadavg())}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2))
    print(markdown(report))


def _share_rows(part: dict[str, Any]) -> list[str]:
    wall = part["wall_s"]
    return [f"| {k} | {v} s ({100 * v / wall:.1f} %) |" for k, v in part["seconds"].items()]


def markdown(report: dict[str, Any]) -> str:
    r = report["result"]
    p, q = r["push"], r["pull"]
    lines = [
        "## Sync (push / initial pull against the Supabase test gateway)",
        "",
        f"Machine: {describe(report['machine'])}; load average at the end {report['load_avg_end'][0]:.2f}.",
        f"Push: {r['chunks']} chunks with 384-d embeddings in {r['docs']} documents of {r['per_doc']} chunks, into "
        "the real schema (HNSW index maintained on every insert: that is most of the server time).",
        f"Initial pull: {r['pull_chunks']} chunks (loaded into the cloud by SQL, HNSW index dropped for the load).",
        "The gateway is a Python stand-in for Supabase on a local PostgreSQL: HTTP time includes it.",
        "",
        "| push | |",
        "|---|---|",
        f"| chunks/s | {p['chunks_per_s']} |",
        f"| wall time | {p['wall_s']} s, {p['requests']} requests |",
        *_share_rows(p),
        "",
        "| initial pull | |",
        "|---|---|",
        f"| chunks/s | {q['chunks_per_s']} |",
        f"| wall time | {q['wall_s']} s, {q['requests']} requests |",
        *_share_rows(q),
        f"| reference: raw RPC pages, nothing applied | {q['reference_raw_rpc_s']} s ({q['reference_chunks']} chunks) |",
        f"| engine / raw RPC | {q['engine_vs_raw_rpc']} |",
    ]
    e = r.get("reembed")
    if e:
        lines += [
            "",
            f"| pull of {e['chunks']} chunks embedded by another model | |",
            "|---|---|",
            f"| pull (chunks stored, vectors dropped) | {e['pull_s']} s |",
            f"| local re-embedding (embed_missing job) | {e['embed_job_s']} s |",
            *_share_rows(e),
            f"| reference: bare embedder on the same texts | {e['reference_bare_embed_s']} s |",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()

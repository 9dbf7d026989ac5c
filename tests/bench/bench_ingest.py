"""Ingest throughput benchmark (``make bench``; a script, not a pytest test).

    python tests/bench/bench_ingest.py [--quick] [--pages N] [--threads N]

Indexes a deterministic sample of the PostgreSQL 15 HTML manual (Debian ``postgresql-doc-15``)
through the real pipeline — durable job per file, hashing, extraction in the child process,
chunking with the model tokenizer, embedding with the int8 ONNX model, one transaction per
document writing chunks + FTS rows + vectors — into a fresh data dir, and reports:

* docs/s, chunks/s, tokens/s of the whole ingest (first job claimed → queue empty);
* where the wall time went: embedding (inside ``embed()``), extraction (the child process
  round trip), chunking, and the rest (hashing, job bookkeeping, SQLite writes, fsyncs);
* the reference measured in the same run: the bare embedder on exactly the same chunk texts
  in one call (the ceiling ingest could reach), and the ratio of the two.

Goal: time outside embedding ≤ 10 % of the total. Prints markdown; writes JSON to
``tests/bench/out/ingest.json``. The machine may be shared: the load average is reported.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(Path(__file__).resolve().parent)]

from bench_embed import machine  # noqa: E402

from backend.ingest.extract import ExtractedDocument  # noqa: E402
from backend.ingest.service import check_scope  # noqa: E402
from backend.services import Services  # noqa: E402
from backend.settings import Settings  # noqa: E402
from backend.store.chunks import NewChunk  # noqa: E402

PG_HTML = Path("/usr/share/doc/postgresql-doc-15/html")
OUT = REPO / "tests" / "bench" / "out" / "ingest.json"


class Timer:
    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0


class TimedExtractor:
    def __init__(self, inner: Any, timer: Timer) -> None:
        self.inner, self.timer = inner, timer

    def extract(self, path: Path, *, name: str | None = None) -> ExtractedDocument:
        t = time.perf_counter()
        try:
            result: ExtractedDocument = self.inner.extract(path, name=name)
            return result
        finally:
            self.timer.seconds += time.perf_counter() - t
            self.timer.calls += 1

    def stop(self) -> None:
        self.inner.stop()


class TimedChunker:
    def __init__(self, inner: Any, timer: Timer) -> None:
        self.inner, self.timer = inner, timer

    def chunk(self, doc: ExtractedDocument) -> list[NewChunk]:
        t = time.perf_counter()
        try:
            result: list[NewChunk] = self.inner.chunk(doc)
            return result
        finally:
            self.timer.seconds += time.perf_counter() - t


class TimedEmbedding:
    def __init__(self, inner: Any, timer: Timer) -> None:
        self.inner, self.timer = inner, timer

    @property
    def state(self) -> str:
        return str(self.inner.state)

    @property
    def model_id(self) -> str:
        return str(self.inner.model_id)

    @property
    def embedder(self) -> Any:
        return _TimedEmbedder(self.inner.embedder, self.timer)


class _TimedEmbedder:
    def __init__(self, inner: Any, timer: Timer) -> None:
        self.inner, self.timer, self.model_id = inner, timer, inner.model_id

    def embed(self, texts: Sequence[str], **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return self.inner.embed(texts, **kwargs)
        finally:
            self.timer.seconds += time.perf_counter() - t
            self.timer.calls += 1


def sample(pages: int) -> list[Path]:
    """Every k-th page of the manual (sorted by name), so the sample spans all chapters."""
    if not PG_HTML.is_dir():
        sys.exit(f"{PG_HTML} is missing: apt-get install postgresql-doc-15")
    everything = sorted(p for p in PG_HTML.glob("*.html"))
    step = max(1, len(everything) // pages)
    return everything[::step][:pages]


def run(pages: list[Path], threads: int) -> dict[str, Any]:
    timers = {name: Timer() for name in ("extract", "chunk", "embed")}
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        settings = Settings.load({}, {"data_dir": Path(tmp) / "data", "embed_threads": threads})
        services = Services(settings)
        pipeline = services.ingest.pipeline
        pipeline.extractor = TimedExtractor(pipeline.extractor, timers["extract"])
        pipeline.chunker = TimedChunker(pipeline.chunker, timers["chunk"])  # type: ignore[assignment]
        pipeline.embedding = TimedEmbedding(services.embedding, timers["embed"])
        services.start()
        try:
            if not services.embedding.wait_ready(120):
                sys.exit(f"embedding model not ready: {services.embedding.summary()['error']}")
            services.ingest.worker.pause()
            for path in pages:
                services.ingest.add_path(str(path), check_scope("bench"), ())
            services.ingest.extractor.start()  # type: ignore[attr-defined]  # spawn the child before timing
            t0 = time.perf_counter()
            services.ingest.worker.resume()
            while True:
                with services.store.read() as conn:
                    busy = conn.execute("SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')").fetchone()[0]
                if not busy:
                    break
                time.sleep(0.01)
            wall = time.perf_counter() - t0
            with services.store.read() as conn:
                texts = [str(r[0]) for r in conn.execute("SELECT text FROM chunks ORDER BY id")]
                tokens = int(conn.execute("SELECT coalesce(sum(token_count), 0) FROM chunks").fetchone()[0])
                statuses = dict(conn.execute("SELECT status, count(*) FROM documents GROUP BY 1").fetchall())
            stats = dict(pipeline.stats)
            threads = int(services.embedding.summary()["threads"] or threads)
            # reference: the bare embedder on exactly the chunk texts ingest embedded
            unique = list(dict.fromkeys(texts))
            t1 = time.perf_counter()
            services.embedding.embedder.embed(unique)
            bare = time.perf_counter() - t1
        finally:
            services.stop()
    embed_s = timers["embed"].seconds
    outside = wall - embed_s
    return {
        "documents": len(pages),
        "statuses": statuses,
        "chunks": len(texts),
        "chunks_embedded": stats.get("chunks_embedded", 0),
        "tokens": tokens,
        "wall_s": round(wall, 3),
        "docs_per_s": round(len(pages) / wall, 2),
        "chunks_per_s": round(len(texts) / wall, 1),
        "tokens_per_s": round(tokens / wall, 0),
        "seconds": {
            "embedding": round(embed_s, 3),
            "extraction": round(timers["extract"].seconds, 3),
            "chunking": round(timers["chunk"].seconds, 3),
            "hashing+storage+jobs": round(outside - timers["extract"].seconds - timers["chunk"].seconds, 3),
        },
        "share_outside_embedding": round(outside / wall, 4),
        "goal_share_outside_embedding": 0.10,
        "reference_bare_embed_s": round(bare, 3),
        "ingest_vs_bare_embed": round(bare / wall, 3),
        "embed_calls": timers["embed"].calls,
        "threads": threads,
    }


def markdown(report: dict[str, Any]) -> str:
    r, m = report["result"], report["machine"]
    lines = [
        f"### Ingest throughput — {r['documents']} PostgreSQL manual pages",
        "",
        f"Machine: {m['cpu']}, {m['physical_cores']} cores / {m['logical_cores']} threads, {m['memory_gb']} GB, "
        f"load average {m['load_avg_start'][0]:.2f} at start, {report['load_avg_end'][0]:.2f} at end; "
        f"{r['threads']} embedding threads.",
        "",
        "| metric | value |",
        "|---|---|",
        f"| documents/s | {r['docs_per_s']} |",
        f"| chunks/s | {r['chunks_per_s']} ({r['chunks']} chunks, {r['tokens']} tokens) |",
        f"| tokens/s | {r['tokens_per_s']:.0f} |",
        f"| wall time | {r['wall_s']} s |",
    ]
    for stage, seconds in r["seconds"].items():
        lines.append(f"| {stage} | {seconds} s ({100 * seconds / r['wall_s']:.1f} %) |")
    verdict = "meets" if r["share_outside_embedding"] <= r["goal_share_outside_embedding"] else "MISSES"
    lines += [
        f"| time outside embedding | {100 * r['share_outside_embedding']:.1f} % ({verdict} the ≤ 10 % goal) |",
        f"| reference: bare embedder, same texts | {r['reference_bare_embed_s']} s |",
        f"| ingest speed / bare embedding speed | {r['ingest_vs_bare_embed']:.2f} |",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="30 pages instead of 150")
    parser.add_argument("--pages", type=int, default=None)
    parser.add_argument("--threads", type=int, default=0, help="embedding threads (0 = physical cores)")
    args = parser.parse_args()
    pages = sample(args.pages or (30 if args.quick else 150))
    report: dict[str, Any] = {"machine": machine()}
    report["result"] = run(pages, args.threads)
    report["load_avg_end"] = list(__import__("os").getloadavg())
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2))
    print(markdown(report))


if __name__ == "__main__":
    main()

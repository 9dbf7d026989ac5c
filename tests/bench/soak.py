"""Soak test: the real server under a steady mixed workload for a long time (``make soak``).

    python tests/bench/soak.py [--minutes 30] [--sample-seconds 5] [--seed-pages 12] [--keep-notes 40]

Not part of ``make test`` nor of ``make bench``: it takes ``--minutes`` (default 30, or the
environment's ``SOAK_MINUTES``; ``--quick`` = ``--minutes 1``) plus a minute of set-up.

One ``python -m backend serve`` subprocess on loopback (tests/bench/loadgen.py's ``Server``),
seeded with ``--seed-pages`` pages of the PostgreSQL 15 manual (as bench_load.py does) and
``--keep-notes`` small notes (so the corpus starts at its bound), then the
loadgen client mix at a gentle, constant rate: searches (hybrid/keyword/semantic, distinct
queries, result cache off), document listing, uploads of small notes (ingested for real), SSE
listeners that disconnect and reconnect every ``--sse-reconnect`` seconds, and a deleter that
keeps only the newest ``--keep-notes`` indexed notes, so the corpus stays bounded.

Every ``--sample-seconds`` it samples the server process (psutil): RSS, open file descriptors,
threads, and, for information, the extraction child's RSS, the ingest queue, the document
count and the database size. tests/bench/trend.py fits a line to each judged series after the
warm-up (the first ``--warmup`` fraction) and says whether it grows (tolerances there).

Writes tests/bench/out/soak.json (every sample) and tests/bench/out/soak.md (printed too).
Exits non-zero on a growth trend, any request error (non-2xx, exception, SSE gap or unexpected
end, a note that failed to ingest), a failed sample, an ERROR line in the server's log, or an
unclean server exit. A run shorter than 5 minutes gets no trend verdict ("inconclusive": the
process is still warming up); it still proves the workload runs without errors.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO)]

from tests.bench.bench_load import seed, wait_idle_queue, warm_up  # noqa: E402
from tests.bench.loadgen import (  # noqa: E402
    PG_HTML,
    PacedClient,
    QueryPool,
    Recorder,
    Server,
    UploadClient,
    Workload,
    page_words,
    query_texts,
    start_workload,
)
from tests.bench.machine import describe, machine  # noqa: E402
from tests.bench.trend import TOLERANCES, assess  # noqa: E402

OUT_DIR = REPO / "tests" / "bench" / "out"
SCOPE = "load"  # the scope loadgen's UploadClient puts its notes in
PAGE = 500  # GET /v1/documents' largest page


class DeleteClient(PacedClient):
    """Deletes the oldest indexed notes beyond the newest ``keep`` (at most 3 per tick)."""

    route = "delete"

    def __init__(self, *args: Any, keep: int, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.keep = keep
        self.deleted = 0

    def one(self, c: httpx.Client) -> None:
        params: dict[str, str | int] = {"scope": SCOPE, "status": "embedded", "limit": PAGE}
        r = self.timed("documents list (deleter)", lambda: c.get("/v1/documents", params=params))
        if r is None:
            return
        for doc in reversed(r.json()["items"][self.keep :][-3:]):  # newest first: the tail is the oldest
            if self.stop_event.is_set():
                return
            if self.timed("delete", lambda doc=doc: c.delete(f"/v1/documents/{doc['id']}")) is not None:
                self.deleted += 1


class ResourceSampler(threading.Thread):
    """Every ``interval_s``: the server's RSS, fds, threads (+ informational series)."""

    def __init__(self, server: Server, started: float, interval_s: float) -> None:
        super().__init__(name="soak-sampler", daemon=True)
        self.server, self.started, self.interval_s = server, started, interval_s
        self.stop_event = threading.Event()
        self.samples: list[dict[str, Any]] = []
        self.problems: list[str] = []

    def run(self) -> None:
        proc = psutil.Process(self.server.pid)
        with self.server.client(timeout=30) as c:
            while True:
                self.samples.append(self.sample(proc, c))
                if self.stop_event.wait(self.interval_s):
                    return

    def sample(self, proc: psutil.Process, c: httpx.Client) -> dict[str, Any]:
        row: dict[str, Any] = {"t_s": round(time.monotonic() - self.started, 2)}
        try:
            with proc.oneshot():
                row["rss_mib"] = proc.memory_info().rss / 2**20
                row["fds"] = proc.num_fds()
                row["threads"] = proc.num_threads()
            children = proc.children(recursive=True)
            row["children"] = len(children)
            row["children_rss_mib"] = sum(_rss(ch) for ch in children) / 2**20
        except psutil.Error as exc:
            self.problems.append(f"psutil: {exc}")
        db = self.server.data_dir
        row["db_mib"] = sum(p.stat().st_size for p in db.glob("docsidecar.db*") if p.is_file()) / 2**20
        try:
            row["queued"] = c.get("/v1/ingest").json()["queued"]
            row["documents"] = c.get("/v1/status").json()["counts"].get("documents")
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            self.problems.append(f"sampler request: {exc}"[:300])
        return row


def _rss(p: psutil.Process) -> int:
    try:
        return int(p.memory_info().rss)
    except psutil.Error:
        return 0


def prefill(server: Server, words: list[str], n: int) -> None:
    """Upload ``n`` notes and wait until they are indexed: the corpus starts at its bound, so the
    deleter keeps it steady from the first sample on (the notes count as the uploader's)."""
    rec = Recorder()
    uploader = UploadClient(server, rec, threading.Event(), 0.0, 0, words=words, tag=f"soak{os.getpid()}-pre")
    with server.client() as c:
        for _ in range(n):
            uploader.one(c)
    if rec.total_errors():
        raise SystemExit(f"uploading the first notes failed: {rec.summary('warmup')}")
    wait_idle_queue(server, 600)


def failed_notes(server: Server) -> int:
    with server.client() as c:
        r = c.get("/v1/documents", params={"scope": SCOPE, "status": "failed", "limit": PAGE})
        r.raise_for_status()
        return len(r.json()["items"])


def soak_workload(args: argparse.Namespace) -> Workload:
    return Workload(
        search_clients=2, search_interval_s=1.0, list_clients=1, list_interval_s=2.0,
        upload_clients=1, upload_interval_s=4.0, sse_listeners=2, sse_reconnect_s=args.sse_reconnect,
    )  # fmt: skip


def run(args: argparse.Namespace) -> dict[str, Any]:
    pages = sorted(PG_HTML.glob("*.html"))
    if len(pages) < 200:
        raise SystemExit(f"{PG_HTML} is missing (Debian package postgresql-doc-15)")
    seed_pages = pages[:: max(1, len(pages) // args.seed_pages)][: args.seed_pages]
    tmp = Path(tempfile.mkdtemp(prefix="docsidecar-soak-"))
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    workload = soak_workload(args)
    report: dict[str, Any] = {
        "machine": machine(),
        "minutes": args.minutes,
        "sample_seconds": args.sample_seconds,
        "prefilled_notes": args.keep_notes,
        "warmup_fraction": args.warmup,
        "workload": workload.describe() + f", 1 deleter × 1 per 2 s keeping the newest {args.keep_notes} notes",
    }
    server = Server(tmp / "data", OUT_DIR / "soak-server.stderr")
    try:
        server.wait_model_ready()
        print(f"seeding {len(seed_pages)} pages", file=sys.stderr, flush=True)
        report["seed"] = seed(server, seed_pages)
        words = [w for p in seed_pages for w in page_words(p)]
        prefill(server, words, args.keep_notes)
        queries = QueryPool(query_texts(seed_pages, 1000, seed=11))
        warm_up(server, queries)
        rec = Recorder()
        rec.start_phase("soak")
        started = time.monotonic()
        sampler = ResourceSampler(server, started, args.sample_seconds)
        sampler.start()
        running = start_workload(server, rec, workload, queries, words, tag=f"soak{os.getpid()}")
        deleter = DeleteClient(server, rec, running.stop, 2.0, 99, keep=args.keep_notes)
        deleter.start()
        running.threads.append(deleter)
        print(f"soak ({args.minutes:g} min, a sample every {args.sample_seconds:g} s)", file=sys.stderr, flush=True)
        progress(started, args.minutes * 60, sampler)
        sampler.stop_event.set()  # before the clients stop: no idle tail in the series
        sampler.join()
        rec.end_phase()
        running.halt()
        report["requests"] = rec.summary("soak")
        report["request_errors"] = rec.total_errors()
        report["sse"] = {"events_received": sum(t.events for t in running.listeners),
                         "resyncs": sum(t.resyncs for t in running.listeners)}  # fmt: skip
        report["deleted_notes"] = deleter.deleted
        report["uploaded_notes"] = sum(t.count for t in running.threads if isinstance(t, UploadClient))
        report["failed_notes"] = failed_notes(server)
        report["sampler_problems"] = sampler.problems[:20]
        report["sampler_problem_count"] = len(sampler.problems)
        report["samples"] = sampler.samples
    finally:
        report["server_exit_code"] = server.stop()
        report["server_log_problems"] = server.log_problems()
        shutil.rmtree(tmp, ignore_errors=True)
    report["trend"] = assess(report["samples"], TOLERANCES, args.warmup)
    report["errors_total"] = (
        report["request_errors"] + report["failed_notes"] + len(report["server_log_problems"])
        + report["sampler_problem_count"] + (report["server_exit_code"] != 0)
    )  # fmt: skip
    report["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    return report


def progress(started: float, seconds: float, sampler: ResourceSampler) -> None:
    """Sleep until the end of the soak, with a progress line on stderr every minute."""
    end = started + seconds
    while (left := end - time.monotonic()) > 0:
        time.sleep(min(60.0, left))
        last = sampler.samples[-1] if sampler.samples else {}
        print(
            f"  {(time.monotonic() - started) / 60:.1f} min: RSS {last.get('rss_mib', 0):.1f} MiB, "
            f"fds {last.get('fds')}, threads {last.get('threads')}, documents {last.get('documents')}",
            file=sys.stderr,
            flush=True,
        )


def _num(v: Any, fmt: str = "{:.1f}") -> str:
    return "—" if v is None else fmt.format(v)


def markdown(r: dict[str, Any]) -> str:
    t = r["trend"]
    out = [
        "## Soak test",
        "",
        f"Machine: {describe(r['machine'])}; load average at end {r['load_avg_end']}.",
        f"Real `docsidecar serve` over loopback for {r['minutes']:g} min, a sample every {r['sample_seconds']:g} s; "
        f"the first {r['warmup_fraction'] * 100:.0f} % is warm-up (left out of the fit). Workload: {r['workload']}.",
        f"Seed corpus: {r['seed']['pages']} manual pages ({r['seed']['counts'].get('chunks', '?')} chunks) and "
        f"{r['prefilled_notes']} notes.",
        "",
        f"**Verdict: {t['verdict']}**" + (f" ({', '.join(t['growing'])})" if t["growing"] else "")
        + f"; **errors: {r['errors_total']}**.",
        "",
        "| series | start | after warm-up | end | max | slope per hour (± SE) | tolerance | verdict |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]  # fmt: skip
    for name, s in t["series"].items():
        tol = s["tolerance"]
        slope = "—" if s.get("slope_per_h") is None else f"{s['slope_per_h']:+.2f} (± {s['slope_se_per_h']:.2f})"
        out.append(
            f"| {name} | {_num(s.get('start'))} | {_num(s.get('after_warmup'))} | {_num(s.get('end'))} | "
            f"{_num(s.get('max'))} | {slope} | ≤ {tol['per_hour']:g} {tol['unit']}/h or rise ≤ {tol['min_rise']:g} | "
            f"{s['verdict']}: {s['reason']} |"
        )
    samples = r["samples"]
    if samples:
        first, last = samples[0], samples[-1]
        info = ", ".join(
            f"{k} {_num(first.get(k))} → {_num(last.get(k))} (max {_num(max(s.get(k) or 0 for s in samples))})"
            for k in ("children_rss_mib", "db_mib", "documents", "queued")
        )
        out += ["", f"Not judged: {info}."]
    out += [
        "",
        "| route | requests | req/s | p50 ms | p95 ms | p99 ms | max ms | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for route, s in r["requests"]["routes"].items():
        errs = sum(s["errors"].values())
        out.append(
            f"| {route} | {s['n']} | {s['per_s']} | {s['p50']} | {s['p95']} | {s['p99']} | {s['max']} | {errs} |"
        )
    out += [
        "",
        f"* Notes uploaded {r['uploaded_notes']}, deleted {r['deleted_notes']}, failed to ingest {r['failed_notes']}; "
        f"SSE events received {r['sse']['events_received']}, resyncs {r['sse']['resyncs']}.",
        f"* Errors: {r['errors_total']} (requests {r['request_errors']}, failed notes {r['failed_notes']}, "
        f"server log {len(r['server_log_problems'])}, sampler {r['sampler_problem_count']}, "
        f"exit code {r['server_exit_code']}).",
    ]
    for route, s in r["requests"]["routes"].items():
        out += [f"  * {route}: {sample}" for sample in s["error_samples"]]
    out += [f"  * server log: {p}" for p in r["server_log_problems"][:10]]
    out += [f"  * sampler: {p}" for p in r["sampler_problems"][:5]]
    return "\n".join(out)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_minutes = float(os.environ.get("SOAK_MINUTES") or 30)
    ap.add_argument("--minutes", type=float, default=default_minutes, help="soak length (default $SOAK_MINUTES or 30)")
    ap.add_argument("--quick", action="store_true", help="--minutes 1: a smoke run (under 5 min: no trend verdict)")
    ap.add_argument("--sample-seconds", type=float, default=None, help="sampling interval (default 5; 2 when ≤ 2 min)")
    ap.add_argument("--warmup", type=float, default=0.2, help="fraction of the run left out of the fit (default 0.2)")
    ap.add_argument("--seed-pages", type=int, default=12, help="manual pages indexed before the soak (default 12)")
    ap.add_argument("--keep-notes", type=int, default=40, help="uploaded notes kept; older ones are deleted")
    ap.add_argument("--sse-reconnect", type=float, default=10.0, help="seconds an SSE listener stays connected")
    args = ap.parse_args(argv)
    if args.quick:
        args.minutes = 1.0
    if args.minutes <= 0:
        ap.error("--minutes must be positive")
    if args.sample_seconds is None:
        args.sample_seconds = 2.0 if args.minutes <= 2 else 5.0
    return args


def main() -> int:
    args = parse_args()
    report = run(args)
    (OUT_DIR / "soak.json").write_text(json.dumps(report, indent=1))
    text = markdown(report)
    (OUT_DIR / "soak.md").write_text(text + "\n", encoding="utf-8")
    print(text)
    print(f"\nwrote {OUT_DIR / 'soak.json'} and {OUT_DIR / 'soak.md'}", file=sys.stderr)
    return 0 if report["errors_total"] == 0 and report["trend"]["verdict"] != "growth trend" else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Load benchmark: the real server under a mixed client load, idle and while a large ingest runs.

    python tests/bench/bench_load.py [--quick] [--seconds 120] [--seed-pages 40]

One ``python -m backend serve`` subprocess on loopback, one run, three phases:

1. **seed** — upload ``--seed-pages`` pages of the PostgreSQL 15 HTML manual (multipart POST
   /v1/documents) and wait until they are indexed: the corpus every search runs against.
2. **idle** — the client mix (tests/bench/loadgen.py: paced search clients — hybrid, keyword,
   semantic, distinct queries, result cache off —, document listing, uploads of small notes,
   SSE listeners) for ``--seconds`` with the ingest queue paused (uploads are accepted and
   queued, nothing is extracted or embedded). This is the reference of the same run.
3. **ingest** — the same mix for ``--seconds`` while the rest of the manual (~1,100 pages, a
   watched folder: POST /v1/folders) is ingested; the phase starts once the worker is busy.
4. **ingest alone** — no clients, ``--seconds / 2``: ingest throughput without the clients.

Reports per phase and route: requests/s, p50/p95/p99/max latency, errors (any non-2xx answer,
exception, SSE disconnect or missed event id, a hybrid search that fell back to keyword only);
server-side query-embedding time (which includes the wait for the model's turn); SSE delivery
lag; server CPU and RSS; chunks embedded per second; the ratio search p95 under ingest / idle
p95 per mode (goal ≤ 2) and the total errors (goal 0). Every ERROR line in the server's log
counts as an error too. Prints markdown; writes tests/bench/out/load.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO)]

from tests.bench.loadgen import (  # noqa: E402
    PG_HTML,
    QueryPool,
    Recorder,
    Server,
    Workload,
    latency_summary,
    page_words,
    query_texts,
    start_workload,
)
from tests.bench.machine import describe, machine  # noqa: E402

OUT_DIR = REPO / "tests" / "bench" / "out"


class Sampler(threading.Thread):
    """Every second: server CPU % (with its children) and RSS, and whether an ingest job runs."""

    def __init__(self, server: Server, rec: Recorder) -> None:
        super().__init__(name="load-sampler", daemon=True)
        self.server, self.rec = server, rec
        self.stop_event = threading.Event()
        self.samples: list[dict[str, Any]] = []

    def run(self) -> None:
        proc = psutil.Process(self.server.pid)
        last_cpu, last_t = _cpu(proc), time.monotonic()
        with self.server.client(timeout=30) as c:
            while not self.stop_event.wait(1.0):
                try:
                    cpu, now = _cpu(proc), time.monotonic()
                    rss = proc.memory_info().rss + sum(_rss(ch) for ch in proc.children(recursive=True))
                    q = c.get("/v1/ingest").json()
                except (psutil.Error, OSError, ValueError):
                    continue
                except Exception as exc:  # httpx errors: the clients report those
                    print(f"sampler: {exc}", file=sys.stderr)
                    continue
                self.samples.append({
                    "phase": self.rec.phase, "cpu_pct": 100 * (cpu - last_cpu) / max(1e-6, now - last_t),
                    "rss_mb": rss / 2**20, "ingest_running": q.get("running") is not None,
                    "queued": q.get("queued", 0),
                })  # fmt: skip
                last_cpu, last_t = cpu, now

    def phase(self, name: str) -> dict[str, Any]:
        rows = [s for s in self.samples if s["phase"] == name]
        if not rows:
            return {}
        return {
            "server_cpu_pct_mean": round(statistics.fmean(r["cpu_pct"] for r in rows), 1),
            "server_rss_mb_max": round(max(r["rss_mb"] for r in rows), 1),
            "ingest_busy_fraction": round(sum(r["ingest_running"] for r in rows) / len(rows), 3),
            "queued_max": max(r["queued"] for r in rows),
        }


def _cpu(proc: psutil.Process) -> float:
    total = sum(proc.cpu_times()[:2])
    for ch in proc.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            total += sum(ch.cpu_times()[:2])
    return total


def _rss(p: psutil.Process) -> int:
    try:
        return int(p.memory_info().rss)
    except psutil.Error:
        return 0


def ingest_stats(server: Server) -> dict[str, Any]:
    with server.client() as c:
        q = c.get("/v1/ingest").json()
    return {"t": time.monotonic(), **q}


def wait_idle_queue(server: Server, timeout: float) -> None:
    with server.client() as c:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            q = c.get("/v1/ingest").json()
            if q["queued"] == 0 and q["running"] is None:
                return
            time.sleep(0.5)
    raise SystemExit(f"the seed corpus was not indexed within {timeout:.0f} s")


def seed(server: Server, pages: list[Path]) -> dict[str, Any]:
    t0 = time.perf_counter()
    with server.client() as c:
        for p in pages:
            r = c.post("/v1/documents", files={"file": (p.name, p.read_bytes(), "text/html")}, data={"scope": "seed"})
            r.raise_for_status()
    wait_idle_queue(server, 3600)
    with server.client() as c:
        counts = c.get("/v1/status").json()["counts"]
    return {"pages": len(pages), "seconds": round(time.perf_counter() - t0, 1), "counts": counts}


def warm_up(server: Server, queries: QueryPool) -> None:
    with server.client() as c:
        for i in range(12):
            mode = ("hybrid", "keyword", "semantic")[i % 3]
            c.post(
                "/v1/search", json={"query": queries.take(), "mode": mode, "k": 10, "cache": False}
            ).raise_for_status()


def wait_ingest_busy(server: Server, timeout: float = 300) -> float:
    t0 = time.monotonic()
    with server.client() as c:
        while time.monotonic() - t0 < timeout:
            q = c.get("/v1/ingest").json()
            if q["running"] is not None and q["running"]["kind"] == "ingest" and q["queued"] > 10:
                return time.monotonic() - t0
            time.sleep(0.2)
    raise SystemExit("the folder ingest did not start")


def chunks_per_s(before: dict[str, Any], after: dict[str, Any]) -> float:
    done = after["stats"].get("chunks_embedded", 0) - before["stats"].get("chunks_embedded", 0)
    return round(done / max(1e-6, after["t"] - before["t"]), 2)


def server_timings(searchers: list[Any], phase: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    merged: dict[str, list[float]] = {}
    for s in searchers:
        for key, values in s.server_ms.items():
            merged.setdefault(key, []).extend(values)
    for key, values in sorted(merged.items()):
        ph, mode, stage = key.split("/")
        if ph == phase:
            out.setdefault(mode, {})[stage] = latency_summary(values)
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    pages = sorted(PG_HTML.glob("*.html"))
    if len(pages) < 200:
        raise SystemExit(f"{PG_HTML} is missing (Debian package postgresql-doc-15)")
    step = max(1, len(pages) // args.seed_pages)
    seed_pages = pages[::step][: args.seed_pages]
    tmp = Path(tempfile.mkdtemp(prefix="docsidecar-load-"))
    bulk = tmp / "manual"
    bulk.mkdir()
    for p in pages:
        if p not in seed_pages:
            shutil.copy2(p, bulk / p.name)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    workload = Workload()
    report: dict[str, Any] = {"machine": machine(), "workload": workload.describe(), "phase_seconds": args.seconds}
    server = Server(tmp / "data", OUT_DIR / "load-server.stderr")
    try:
        server.wait_model_ready()
        print(f"seeding {len(seed_pages)} pages", file=sys.stderr, flush=True)
        report["seed"] = seed(server, seed_pages)
        with server.client() as c:
            c.post("/v1/ingest/pause").raise_for_status()
        words = [w for p in seed_pages for w in page_words(p)]
        need = int(args.seconds * 2.5 * workload.search_clients / workload.search_interval_s) + 200
        queries = QueryPool(query_texts(seed_pages, need, seed=7))
        warm_up(server, queries)
        rec = Recorder()
        sampler = Sampler(server, rec)
        sampler.start()
        running = start_workload(server, rec, workload, queries, words, tag=str(os.getpid()))
        print(f"idle phase ({args.seconds} s)", file=sys.stderr, flush=True)
        rec.start_phase("idle")
        time.sleep(args.seconds)
        rec.start_phase("transition")
        with server.client() as c:
            c.post("/v1/ingest/resume").raise_for_status()
            c.post("/v1/folders", json={"path": str(bulk), "scope": "manual"}).raise_for_status()
        report["ingest_start_s"] = round(wait_ingest_busy(server), 1)
        print(f"ingest phase ({args.seconds} s)", file=sys.stderr, flush=True)
        before = ingest_stats(server)
        rec.start_phase("ingest")
        time.sleep(args.seconds)
        rec.end_phase()
        after = ingest_stats(server)
        running.halt()
        print(f"ingest alone ({args.seconds // 2} s)", file=sys.stderr, flush=True)
        rec.start_phase("ingest_alone")
        alone0 = ingest_stats(server)
        time.sleep(args.seconds // 2)
        alone1 = ingest_stats(server)
        rec.end_phase()
        sampler.stop_event.set()
        sampler.join()
        report["phases"] = {ph: {**rec.summary(ph), "resources": sampler.phase(ph)} for ph in ("idle", "ingest")}
        for ph in ("idle", "ingest"):
            report["phases"][ph]["server_search_ms"] = server_timings(running.searchers, ph)
            lags = [v for lst in running.listeners for v in lst.lag_ms.get(ph, [])]
            report["phases"][ph]["sse_delivery_lag_ms"] = latency_summary(lags)
        report["phases"]["ingest_alone"] = {"resources": sampler.phase("ingest_alone")}
        report["ingest"] = {
            "chunks_per_s_under_load": chunks_per_s(before, after),
            "chunks_per_s_alone": chunks_per_s(alone0, alone1),
            "documents_indexed_total": alone1["stats"].get("documents_indexed", 0),
            "queued_at_end": alone1["queued"],
        }
        report["sse"] = {"events_received": sum(t.events for t in running.listeners),
                         "resyncs": sum(t.resyncs for t in running.listeners)}  # fmt: skip
        report["client_errors"] = rec.total_errors("idle") + rec.total_errors("ingest")
        report["errors_outside_phases"] = rec.total_errors() - report["client_errors"]
    finally:
        code = server.stop()
        report["server_exit_code"] = code
        report["server_log_problems"] = server.log_problems()
        shutil.rmtree(tmp, ignore_errors=True)
    report["ratios"] = ratios(report)
    report["errors_total"] = (
        report.get("client_errors", 0) + report.get("errors_outside_phases", 0)
        + len(report["server_log_problems"]) + (report["server_exit_code"] != 0)
    )  # fmt: skip
    report["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    return report


def ratios(r: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    idle, busy = r["phases"]["idle"]["routes"], r["phases"]["ingest"]["routes"]
    for route in sorted(idle):
        a, b = idle[route], busy.get(route, {})
        if a.get("p95") and b.get("p95"):
            out[route] = {"p95_ratio": round(b["p95"] / a["p95"], 2), "p50_ratio": round(b["p50"] / a["p50"], 2)}
    return out


def markdown(r: dict[str, Any]) -> str:
    out = [
        "## Load benchmark",
        "",
        f"Machine: {describe(r['machine'])}; load average at end {r['load_avg_end']}.",
        f"Real `docsidecar serve` over loopback. Workload: {r['workload']}.",
        f"Seed corpus: {r['seed']['pages']} manual pages uploaded and indexed in {r['seed']['seconds']} s "
        f"({r['seed']['counts'].get('chunks', '?')} chunks). Phases of {r['phase_seconds']} s: **idle** (ingest "
        f"queue paused) then **ingest** (watched folder of the rest of the manual; worker busy "
        f"{r['phases']['ingest']['resources'].get('ingest_busy_fraction', 0) * 100:.0f} % of the phase).",
        "",
        "| route | phase | req/s | p50 ms | p95 ms | p99 ms | max ms | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    routes = sorted(set(r["phases"]["idle"]["routes"]) | set(r["phases"]["ingest"]["routes"]))
    for route in routes:
        for ph in ("idle", "ingest"):
            s = r["phases"][ph]["routes"].get(route)
            if s is None:
                continue
            errs = sum(s["errors"].values())
            out.append(
                f"| {route} | {ph} | {s['per_s']} | {s['p50']} | {s['p95']} | {s['p99']} | {s['max']} | {errs} |"
            )
    out += ["", "| search p95 under ingest / idle p95 (goal ≤ 2) | value |", "|---|---:|"]
    for route, v in r["ratios"].items():
        if route.startswith("search"):
            out.append(f"| {route} | {v['p95_ratio']}× (p50 {v['p50_ratio']}×) |")
    emb = {ph: r["phases"][ph]["server_search_ms"].get("hybrid", {}).get("embed_ms", {}) for ph in ("idle", "ingest")}
    res = {ph: r["phases"][ph]["resources"] for ph in ("idle", "ingest", "ingest_alone")}
    ing = r["ingest"]
    out += [
        "",
        f"* Server-side query embedding incl. the wait for the model's turn (hybrid): idle p50 "
        f"{emb['idle'].get('p50')} / p95 {emb['idle'].get('p95')} ms; under ingest p50 {emb['ingest'].get('p50')} / "
        f"p95 {emb['ingest'].get('p95')} ms.",
        f"* Ingest: {ing['chunks_per_s_under_load']} chunks/s under the client load, {ing['chunks_per_s_alone']} "
        f"chunks/s alone; {ing['queued_at_end']} jobs still queued at the end (the ingest outlasts the run).",
        f"* SSE: {r['sse']['events_received']} events received, {r['sse']['resyncs']} resyncs; delivery lag p95 "
        f"idle {r['phases']['idle']['sse_delivery_lag_ms']['p95']} ms, under ingest "
        f"{r['phases']['ingest']['sse_delivery_lag_ms']['p95']} ms.",
        "* Server CPU (% of one core, with the extraction child) / peak RSS MB: "
        + ", ".join(f"{ph} {v.get('server_cpu_pct_mean')} / {v.get('server_rss_mb_max')}" for ph, v in res.items()),
        f"* **Errors: {r['errors_total']}** (client {r.get('client_errors')}, outside the phases "
        f"{r.get('errors_outside_phases')}, server log {len(r['server_log_problems'])}, exit code "
        f"{r['server_exit_code']}).",
    ]
    for ph in ("idle", "ingest"):
        for route, s in r["phases"][ph]["routes"].items():
            for sample in s["error_samples"]:
                out.append(f"  * {ph} {route}: {sample}")
    out += [f"  * server log: {p}" for p in r["server_log_problems"][:10]]
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="30 s phases, 12 seed pages")
    ap.add_argument("--seconds", type=int, default=None, help="length of the idle and ingest phases (default 120)")
    ap.add_argument("--seed-pages", type=int, default=None, help="manual pages indexed before the phases (default 40)")
    args = ap.parse_args()
    args.seconds = args.seconds or (30 if args.quick else 120)
    args.seed_pages = args.seed_pages or (12 if args.quick else 40)
    report = run(args)
    (OUT_DIR / "load.json").write_text(json.dumps(report, indent=1))
    print(markdown(report))
    return 0 if report["errors_total"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())

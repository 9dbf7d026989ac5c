"""Embedding throughput benchmark (``make bench``; a script, not a pytest test).

    python tests/bench/bench_embed.py [--quick] [--chunks 2000] [--threads N] [--st-python PATH] ...

Measures, on ~200-token chunks cut from the PostgreSQL HTML docs (Debian postgresql-doc-15):

- ``ours``  — OnnxEmbedder (int8 ONNX, length bucketing under a token budget, spinning off);
- ``naive`` — the same int8 ONNX model in a plain loop: batches of 32, padded to 256 tokens;
- ``st``    — sentence-transformers on PyTorch with the fp32 reference weights, batch 32;

all with the same intra-op thread count, each in its own process (see embed_worker.py). It
reports chunks/s and tokens/s (real tokens incl. [CLS]/[SEP], the same numerator for every
engine), ratios against ``st`` and ``naive``, single-query latency (median, p95), peak RSS,
agreement of the int8 vectors with the fp32 ones, idle CPU after work with onnxruntime spinning
on and off, and the machine. Prints markdown; writes JSON to tests/bench/out/embed.json.

``st`` needs torch + sentence-transformers: the current interpreter is used if it has them,
else ``.venv-bench/bin/python`` (or ``--st-python``). The machine may be shared: each engine's
bulk time is the best of ``--rounds`` passes, and the load average is reported.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(Path(__file__).resolve().parent)]

import embed_corpus  # noqa: E402
import machine as bench_machine  # noqa: E402
import onnxruntime  # noqa: E402

from backend.embed.fetch import fetch_model  # noqa: E402
from backend.embed.manifest import DEFAULT_MODEL_ID, find_manifest  # noqa: E402

FAST_MODEL_ID = "all-MiniLM-L6-v2-int8-dynamic"
from backend.embed.onnx_embedder import DEFAULT_TOKEN_BUDGET, default_threads  # noqa: E402
from backend.embed.tokenizer import load_tokenizer, truncating_copy  # noqa: E402

WORKER = Path(__file__).resolve().with_name("embed_worker.py")


def machine() -> dict[str, Any]:
    return {**bench_machine.machine(), "onnxruntime": onnxruntime.__version__}


def st_interpreter(explicit: str | None) -> str | None:
    if explicit:
        return explicit
    if importlib.util.find_spec("sentence_transformers") and importlib.util.find_spec("torch"):
        return sys.executable
    venv = REPO / ".venv-bench" / "bin" / "python"
    return str(venv) if venv.exists() else None


def run_engine(python: str, engine: str, job: Path, tmp: Path) -> dict[str, Any]:
    out = tmp / f"{engine}.json"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    print(f"  running {engine} ({python}) ...", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [python, str(WORKER), engine, str(job), str(out)], env=env, check=False, text=True,
        capture_output=True,
    )  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(f"{engine} worker failed:\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.read_text())
    result["vectors"] = np.load(out.with_suffix(".npy"))
    print(f"  {engine} done in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    return result


def summarise(results: dict[str, dict[str, Any]], n: int, tokens: int) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    for name, r in results.items():
        rows[name] = {
            "chunks_per_s": n / r["bulk_s"],
            "tokens_per_s": tokens / r["bulk_s"],
            "tokens_per_cpu_s": tokens / r["bulk_cpu_s"],
            "bulk_s": r["bulk_s"],
            "query_ms": r["query_ms"],
            "peak_rss_mb": r["peak_rss_mb"],
            "load_s": r["load_s"],
        }
    for name, row in rows.items():
        for ref in ("st", "naive"):
            if ref in rows and ref != name:
                row[f"speedup_vs_{ref}"] = row["tokens_per_s"] / rows[ref]["tokens_per_s"]
                row[f"cpu_efficiency_vs_{ref}"] = row["tokens_per_cpu_s"] / rows[ref]["tokens_per_cpu_s"]
    agreement: dict[str, Any] = {}
    ours = results.get("ours", {}).get("vectors")
    for name, key in (("ours", "cosine_ours_vs_st_fp32"), ("fast", "cosine_fast_vs_st_fp32")):
        mine = results.get(name, {}).get("vectors")
        if mine is not None and "st" in results:
            cos = (mine * results["st"]["vectors"]).sum(axis=1)
            agreement[key] = {
                "mean": float(cos.mean()), "min": float(cos.min()), "p1": float(np.percentile(cos, 1)),
            }  # fmt: skip
    if ours is not None and "naive" in results:
        diff = np.abs(ours - results["naive"]["vectors"]).max()
        agreement["max_abs_diff_ours_vs_naive"] = float(diff)
    return {"engines": rows, "agreement": agreement}


def markdown(report: dict[str, Any]) -> str:
    m, c = report["machine"], report["corpus"]
    lines = [
        f"## Embedding benchmark — {m['cpu']}, {m['physical_cores']} physical / "
        f"{m['logical_cores']} logical cores, {report['threads']} threads",
        "",
        f"{c['chunks']} chunks of the PostgreSQL 15 docs, {c['tokens']} tokens "
        f"(mean {c['mean_tokens']:.0f}, p10 {c['p10_tokens']:.0f}, max {c['max_tokens']}); "
        f"load average {m['load_avg_start'][0]:.2f} → {report['load_avg_end'][0]:.2f}",
        "",
        "| engine | chunks/s | tokens/s | vs ST | vs naive | tokens per CPU-s | vs ST (CPU) "
        "| query median ms | query p95 ms | peak RSS MB | load s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in report["engines"].items():
        vs_st = f"{r['speedup_vs_st']:.2f}×" if "speedup_vs_st" in r else "—"
        vs_naive = f"{r['speedup_vs_naive']:.2f}×" if "speedup_vs_naive" in r else "—"
        cpu_vs_st = f"{r['cpu_efficiency_vs_st']:.2f}×" if "cpu_efficiency_vs_st" in r else "—"
        lines.append(
            f"| {report['labels'][name]} | {r['chunks_per_s']:.1f} | {r['tokens_per_s']:.0f} | "
            f"{vs_st} | {vs_naive} | {r['tokens_per_cpu_s']:.0f} | {cpu_vs_st} | "
            f"{r['query_ms']['median']:.2f} | {r['query_ms']['p95']:.2f} | "
            f"{r['peak_rss_mb']:.0f} | {r['load_s']:.2f} |"
        )
    agree = report["agreement"]
    lines.append("")
    for key, what in (("cosine_ours_vs_st_fp32", "default int8"), ("cosine_fast_vs_st_fp32", "opt-in dynamic int8")):
        if key in agree:
            a = agree[key]
            lines.append(f"{what} vs fp32 cosine: mean {a['mean']:.5f}, p1 {a['p1']:.5f}, min {a['min']:.5f}")
    if "max_abs_diff_ours_vs_naive" in agree:
        lines.append(f"bucketed vs naive (same model): max |Δ| {agree['max_abs_diff_ours_vs_naive']:.2e}")
    if "spinning" in report:
        lines += [
            "",
            "| onnxruntime intra-op spinning | idle CPU s in the 1 s after a bulk embed "
            "| after a query | query median ms | bulk chunks/s (subset) |",
            "|---|---:|---:|---:|---:|",
        ]
        for name, s in report["spinning"].items():
            lines.append(
                f"| {name.replace('_', ' ')} | {s['idle_cpu_s_after_embed']:.3f} | "
                f"{s['idle_cpu_s_after_query']:.3f} | {s['query_ms']['median']:.2f} | "
                f"{s['bulk_subset_chunks'] / s['bulk_subset_s']:.1f} |"
            )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--chunks", type=int, default=None, help="corpus size (default 2000; --quick 300)")
    ap.add_argument("--queries", type=int, default=None, help="single queries timed (default 200; --quick 50)")
    ap.add_argument("--quick", action="store_true", help="a short smoke run (small corpus, few queries)")
    ap.add_argument("--threads", type=int, default=default_threads())
    ap.add_argument("--rounds", type=int, default=1, help="bulk passes per engine (best kept)")
    ap.add_argument("--token-budget", type=int, default=DEFAULT_TOKEN_BUDGET)
    ap.add_argument("--engines", default="ours,fast,naive,st")
    ap.add_argument("--st-python", default=None)
    ap.add_argument("--out", type=Path, default=REPO / "tests/bench/out/embed.json")
    args = ap.parse_args()
    args.chunks = args.chunks or (300 if args.quick else 2000)
    args.queries = args.queries or (50 if args.quick else 200)

    manifest = find_manifest(REPO / "models", DEFAULT_MODEL_ID)
    model_dir = fetch_model(manifest, REPO / "models", include_reference=True)
    tokenizer = load_tokenizer(manifest, model_dir)
    print("building corpus ...", file=sys.stderr, flush=True)
    chunks = embed_corpus.build(tokenizer, args.chunks)
    queries = embed_corpus.queries(tokenizer, chunks, args.queries)
    counter = truncating_copy((model_dir / "tokenizer.json").read_bytes(), manifest.max_tokens)
    lengths = np.array([len(e.ids) for e in counter.encode_batch(chunks)])
    report: dict[str, Any] = {
        "machine": machine(),
        "threads": args.threads,
        "token_budget": args.token_budget,
        "corpus": {
            "source": str(embed_corpus.PG_DOCS),
            "chunks": len(chunks),
            "tokens": int(lengths.sum()),
            "mean_tokens": float(lengths.mean()),
            "p10_tokens": float(np.percentile(lengths, 10)),
            "max_tokens": int(lengths.max()),
            "queries": len(queries),
        },
    }
    engines = [e for e in args.engines.split(",") if e]
    labels = {
        "ours": "ours, default (weight-only int8 ONNX, bucketed)",
        "fast": f"ours, opt-in {FAST_MODEL_ID} (dynamic int8, 1 sequence/run)",
        "naive": "naive ONNX loop (int8, pad 256)",
    }
    pythons = {"ours": sys.executable, "fast": sys.executable, "naive": sys.executable}
    if "fast" in engines:
        fetch_model(find_manifest(REPO / "models", FAST_MODEL_ID), REPO / "models")
    if "st" in engines:
        st_python = st_interpreter(args.st_python)
        if st_python is None:
            raise SystemExit(
                "sentence-transformers not found: create .venv-bench (see the README) "
                "or pass --st-python, or run with --engines ours,naive"
            )
        pythons["st"] = st_python
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-embed-") as tmp_name:
        tmp = Path(tmp_name)
        job = tmp / "job.json"
        job.write_text(json.dumps({
            "models_dir": str(REPO / "models"), "model_id": manifest.id, "fast_model_id": FAST_MODEL_ID,
            "reference_dir": str(manifest.reference_dir_in(REPO / "models")),
            "threads": args.threads, "rounds": args.rounds, "token_budget": args.token_budget,
            "chunks": chunks, "queries": queries,
        }))  # fmt: skip
        for engine in engines:
            results[engine] = run_engine(pythons[engine], engine, job, tmp)
    if "st" in results:
        v = results["st"]["versions"]
        labels["st"] = f"sentence-transformers {v['sentence_transformers']} (torch {v['torch']} fp32)"
        report["st_versions"] = v
    report.update(summarise(results, len(chunks), int(lengths.sum())))
    report["labels"] = {k: labels[k] for k in results}
    if "ours" in results:
        report["spinning"] = results["ours"]["spinning"]
    report["load_avg_end"] = os.getloadavg()
    text = markdown(report)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()

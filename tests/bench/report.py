"""One table of the headline figures and a chart of search latency vs corpus size (``make report``).

    python tests/bench/report.py [--from-json] [--quick] [--only search,embed] [--bench-python PATH]

Without ``--from-json`` it first runs the benchmarks (tests/bench/run_all.py with ``--quick`` /
``--only`` passed through, under ``--bench-python``, default the project's ``.venv``: the
benchmarks need its dev and package extras). Then, from whatever JSON results the benchmarks
left in ``--out-dir`` (tests/bench/out/: startup, embed, ingest, search, load, sync, bundle,
and soak.json / eval_retrieval.json when those were run), it writes

* ``--results-dir``/REPORT.md — the machine (CPU model, cores, RAM, OS, Python), one markdown
  table of the headline figures, and where each figure came from (file date, load average);
* ``--results-dir``/latency_vs_corpus.png — KNN p50/p95 of our index and of the numpy exact
  scan at each corpus size, and hybrid end-to-end p95 when measured (matplotlib, from
  .venv-bench: ``make report`` runs this script there).

A benchmark without results, or a figure a result file lacks, shows "not measured".
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parents[1]
OUT_DIR = BENCH_DIR / "out"
RESULTS_DIR = BENCH_DIR / "results"
CHART = "latency_vs_corpus.png"
NOT_MEASURED = "not measured"
SOURCES = ("startup", "embed", "ingest", "search", "load", "sync", "bundle", "soak", "eval_retrieval")
SCALES = (10_000, 100_000, 1_000_000)
"""Corpus sizes the table always lists (others found in search.json are listed too)."""


# -- reading results ------------------------------------------------------------------------------
def load_results(out_dir: Path) -> dict[str, dict[str, Any]]:
    """``{bench: its JSON}`` for every result file present; unreadable files are left out."""
    results: dict[str, dict[str, Any]] = {}
    for name in (*SOURCES, "run_all"):
        path = out_dir / f"{name}.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            data["_file"] = {"name": path.name, "mtime": path.stat().st_mtime}
            results[name] = data
    return results


def dig(data: Any, *keys: str | int) -> Any:
    """``data[k1][k2]…`` or None when any step is missing."""
    for k in keys:
        if not isinstance(data, dict | list):
            return None
        try:
            data = data[k]  # type: ignore[index]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def fmt(value: Any, spec: str = "{:.2f}", unit: str = "") -> str:
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return NOT_MEASURED
    return spec.format(value) + unit


# -- the machine ----------------------------------------------------------------------------------
def describe_machine(m: dict[str, Any] | None) -> str:
    """One line naming the machine; tolerates both key sets the benchmarks write."""
    if not m:
        return NOT_MEASURED
    physical = m.get("physical_cores", m.get("cores_physical"))
    logical = m.get("logical_cores", m.get("cores_logical"))
    ram = m.get("memory_gb", m.get("ram_gb"))
    return (
        f"{m.get('cpu', '?')}, {physical} physical / {logical} logical cores, {ram} GiB RAM, "
        f"{m.get('os', '?')}, Python {m.get('python', '?')}"
    )


def machines(results: dict[str, dict[str, Any]]) -> list[tuple[str, list[str]]]:
    """Distinct machine descriptions with the benchmarks measured on each."""
    seen: dict[str, list[str]] = {}
    for name, data in results.items():
        if isinstance(data.get("machine"), dict):
            seen.setdefault(describe_machine(data["machine"]), []).append(name)
    return list(seen.items())


# -- the headline table ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    area: str
    figure: str
    value: str
    source: str


Getter = Callable[[dict[str, Any]], str]


def _rows(area: str, source: str, results: dict[str, dict[str, Any]], spec: Iterable[tuple[str, Getter]]) -> list[Row]:
    data = results.get(source)
    return [Row(area, figure, get(data) if data is not None else NOT_MEASURED, source) for figure, get in spec]


def _scales(search: dict[str, Any] | None) -> list[int]:
    found = {int(n) for n in (dig(search, "scales") or {}) if str(n).isdigit()}
    return sorted(found | set(SCALES))


def _clients_key(http: Any) -> str | None:
    return next((k for k in http if k.endswith("_clients")), None) if isinstance(http, dict) else None


def search_rows(results: dict[str, dict[str, Any]]) -> list[Row]:
    search = results.get("search")
    rows = [
        Row(
            "Search",
            "query embedding alone p50 / p95",
            _pair(dig(search, "query_embedding_ms"), "p50", "p95"),
            "search",
        )
    ]
    for n in _scales(search):
        s = dig(search, "scales", str(n))
        label = f"{n:,} chunks"
        knn, exact = dig(s, "knn", "knn_ms"), dig(s, "knn", "numpy_exact_ms")
        rows += [
            Row("Search", f"{label}: KNN p50 / p95 (ours)", _pair(knn, "p50", "p95"), "search"),
            Row("Search", f"{label}: numpy exact scan p50 / p95", _pair(exact, "p50", "p95"), "search"),
            Row("Search", f"{label}: recall@10 vs exact", fmt(dig(s, "knn", "recall_at_10"), "{:.3f}"), "search"),
            Row("Search", f"{label}: hybrid end to end p95, 1 client", fmt(dig(s, "http", "1_client", "p95"), "{:.1f}", " ms"), "search"),
        ]  # fmt: skip
        many = _clients_key(dig(s, "http"))
        h = dig(s, "http", many) if many else None
        value = (
            NOT_MEASURED
            if h is None
            else f"{fmt(h.get('p95'), '{:.1f}', ' ms')}, {fmt(h.get('requests_per_s'), '{:.1f}')} req/s"
        )
        clients = many.split("_")[0] if many else "N"
        rows.append(Row("Search", f"{label}: hybrid end to end p95, {clients} clients", value, "search"))
    return rows


def _pair(d: Any, a: str, b: str, unit: str = " ms") -> str:
    x, y = dig(d, a), dig(d, b)
    if x is None and y is None:
        return NOT_MEASURED
    return f"{fmt(x)} / {fmt(y)}{unit}"


def _search_ratios(data: dict[str, Any]) -> str:
    ratios = {k: v.get("p95_ratio") for k, v in (data.get("ratios") or {}).items() if k.startswith("search")}
    return ", ".join(f"{k.removeprefix('search ')} {v}×" for k, v in ratios.items()) or NOT_MEASURED


def _soak_slopes(data: dict[str, Any]) -> str:
    series = dig(data, "trend", "series") or {}
    parts = [f"{k} {fmt(v.get('slope_per_h'), '{:+.2f}')}/h" for k, v in series.items()]
    return ", ".join(parts) or NOT_MEASURED


def headline_rows(results: dict[str, dict[str, Any]]) -> list[Row]:
    fresh = ("summary", "sidecar_fresh_data_dir")
    rows = _rows("Start-up", "startup", results, [
        ("spawn → ready line, fresh data dir (median)", lambda d: fmt(dig(d, *fresh, "ready_s", "median"), "{:.2f}", " s")),
        ("ready vs minimal Litestar app", lambda d: fmt(dig(d, *fresh, "ready_vs_minimal_app"), "{:.2f}", "×")),
        ("model ready after the ready line (median)", lambda d: fmt(dig(d, *fresh, "model_ready_after_s", "median"), "{:.2f}", " s")),
        ("idle RSS with the model loaded (median)", lambda d: fmt(dig(d, *fresh, "rss_idle_mb", "median"), "{:.0f}", " MB")),
        ("SIGTERM → exit (median)", lambda d: fmt(dig(d, *fresh, "exit_s", "median"), "{:.2f}", " s")),
    ])  # fmt: skip
    ours = ("engines", "ours")
    rows += _rows("Embedding", "embed", results, [
        ("bulk throughput (ours)", lambda d: f"{fmt(dig(d, *ours, 'chunks_per_s'), '{:.1f}')} chunks/s, "
                                            f"{fmt(dig(d, *ours, 'tokens_per_s'), '{:.0f}')} tokens/s"),
        ("vs sentence-transformers / vs naive ONNX loop", lambda d: f"{fmt(dig(d, *ours, 'speedup_vs_st'), '{:.2f}', '×')} / "
                                                                   f"{fmt(dig(d, *ours, 'speedup_vs_naive'), '{:.2f}', '×')}"),
        ("single query median / p95", lambda d: _pair(dig(d, *ours, "query_ms"), "median", "p95")),
        ("peak RSS (ours)", lambda d: fmt(dig(d, *ours, "peak_rss_mb"), "{:.0f}", " MB")),
    ])  # fmt: skip
    rows += _rows("Ingest", "ingest", results, [
        ("throughput", lambda d: f"{fmt(dig(d, 'result', 'docs_per_s'))} docs/s, {fmt(dig(d, 'result', 'chunks_per_s'), '{:.1f}')} chunks/s"),
        ("time outside embedding (goal ≤ 10 %)", lambda d: fmt(_pct(dig(d, "result", "share_outside_embedding")), "{:.1f}", " %")),
    ])  # fmt: skip
    rows += search_rows(results)
    rows += _rows("Load", "load", results, [
        ("search p95 under ingest / idle (goal ≤ 2×)", _search_ratios),
        ("ingest under the client load", lambda d: fmt(dig(d, "ingest", "chunks_per_s_under_load"), "{:.1f}", " chunks/s")),
        ("errors (goal 0)", lambda d: fmt(dig(d, "errors_total"), "{:d}")),
    ])  # fmt: skip
    rows += _rows("Sync", "sync", results, [
        ("push", lambda d: fmt(dig(d, "result", "push", "chunks_per_s"), "{:.1f}", " chunks/s")),
        ("initial pull", lambda d: fmt(dig(d, "result", "pull", "chunks_per_s"), "{:.1f}", " chunks/s")),
    ])  # fmt: skip
    rows += _rows("Bundle", "bundle", results, [
        ("ready line vs source mode (goal ≤ 1.5×)", lambda d: fmt(dig(d, "ready_ratio"), "{:.2f}", "×")),
        ("size on disk (goal ≤ 250 MB)", lambda d: fmt(dig(d, "bundle", "size_mb"), "{:.0f}", " MB")),
    ])  # fmt: skip
    rows += _rows("Soak", "soak", results, [
        ("length / verdict", lambda d: f"{fmt(dig(d, 'minutes'), '{:g}', ' min')}: {dig(d, 'trend', 'verdict') or NOT_MEASURED}"),
        ("trend after warm-up (RSS MiB, fds, threads)", _soak_slopes),
        ("errors (goal 0)", lambda d: fmt(dig(d, "errors_total"), "{:d}")),
    ])  # fmt: skip
    rows += _rows("Retrieval", "eval_retrieval", results, [
        (f"nDCG@10 {mode}", lambda d, mode=mode: fmt(dig(d, "overall", mode, "ndcg@10"), "{:.3f}"))
        for mode in ("keyword", "semantic", "hybrid")
    ])  # fmt: skip
    return rows


def _pct(share: Any) -> float | None:
    return 100 * share if isinstance(share, int | float) else None


def _source_line(name: str, data: dict[str, Any] | None) -> str:
    if data is None:
        return f"* `{name}.json`: {NOT_MEASURED}"
    when = datetime.fromtimestamp(data["_file"]["mtime"], UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = dig(data, "machine", "load_avg_start", 0)
    end = dig(data, "load_avg_end", 0)
    loads = f"load average {fmt(load)} → {fmt(end)}" if load is not None or end is not None else "load not recorded"
    return f"* `{name}.json`: written {when}, {loads}"


def markdown(results: dict[str, dict[str, Any]], commit: str = "unknown") -> str:
    rows = headline_rows(results)
    ms = machines(results)
    run = results.get("run_all")
    mode = {True: "quick (smoke run)", False: "full"}.get(dig(run, "quick"), "not recorded") if run else "not recorded"
    out = ["# docsidecar benchmark results", ""]
    if not ms:
        out.append(f"* Machine: {NOT_MEASURED}")
    elif len(ms) == 1:
        out.append(f"* Machine: {ms[0][0]}")
    else:
        out += [f"* Machine: {desc} ({', '.join(names)})" for desc, names in ms]
    out += [
        f"* Mode of the last `make bench`: {mode}; report written at commit {commit}",
        "* Written by `make report` (tests/bench/report.py) from the JSON results in tests/bench/out/; "
        "`make report REPORT_ARGS=--from-json` rebuilds it without running the benchmarks.",
        "",
        "| area | figure | value | bench |",
        "|---|---|---|---|",
    ]
    out += [f"| {r.area} | {r.figure} | {r.value} | {r.source} |" for r in rows]
    out += ["", f"![search latency vs corpus size]({CHART})", "", "Sources:", ""]
    out += [_source_line(name, results.get(name)) for name in SOURCES]
    return "\n".join(out) + "\n"


# -- the chart ------------------------------------------------------------------------------------
def latency_series(search: dict[str, Any] | None) -> dict[str, list[tuple[int, float]]]:
    """The chart's lines: ``{label: [(chunks, ms), …]}``, only the points that were measured."""
    spec = {
        "KNN p50 (ours)": ("knn", "knn_ms", "p50"),
        "KNN p95 (ours)": ("knn", "knn_ms", "p95"),
        "numpy exact p50": ("knn", "numpy_exact_ms", "p50"),
        "numpy exact p95": ("knn", "numpy_exact_ms", "p95"),
        "hybrid end to end p95 (HTTP, 1 client)": ("http", "1_client", "p95"),
    }
    out: dict[str, list[tuple[int, float]]] = {}
    for label, keys in spec.items():
        points = []
        for n in _scales(search):
            v = dig(search, "scales", str(n), *keys)
            if isinstance(v, int | float) and not isinstance(v, bool):
                points.append((n, float(v)))
        if points:
            out[label] = points
    return out


def draw_chart(series: dict[str, list[tuple[int, float]]], path: Path, subtitle: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    if not series:
        ax.text(0.5, 0.5, f"search latency: {NOT_MEASURED}\n(run `make report`)", ha="center", va="center", fontsize=14)
        ax.set_axis_off()
    for label, points in series.items():
        xs, ys = zip(*points, strict=True)
        p95 = "p95" in label
        color = "tab:blue" if "ours" in label else "tab:orange" if "numpy" in label else "tab:green"
        ax.plot(xs, ys, "--" if p95 else "-", marker="s" if p95 else "o", color=color, label=label)
    if series:
        from matplotlib.ticker import FuncFormatter, NullLocator

        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(SCALES[0] / 1.5, SCALES[-1] * 1.5)
        ax.set_xticks(list(SCALES), [f"{n:,}" for n in SCALES])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:g}"))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda y, _: f"{y:g}" if f"{y:.0e}"[0] in "25" else ""))
        ax.set_xlabel("corpus size (chunks)")
        ax.set_ylabel("latency, ms (log scale)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    ax.set_title("Search latency vs corpus size (k=10)\n" + textwrap.fill(subtitle, 110), fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


# -- running ---------------------------------------------------------------------------------------
def run_benchmarks(python: str, quick: bool, only: str) -> int:
    cmd = [python, str(BENCH_DIR / "run_all.py")] + (["--quick"] if quick else []) + (["--only", only] if only else [])
    print(f"== {' '.join(cmd)}", file=sys.stderr, flush=True)
    return subprocess.run(cmd, cwd=REPO, check=False).returncode


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--from-json", action="store_true", help="do not run the benchmarks; use the JSON results there are"
    )
    ap.add_argument("--quick", action="store_true", help="run the benchmarks in --quick mode")
    ap.add_argument("--only", default="", help="comma-separated benchmarks to run (run_all.py --only)")
    default_python = REPO / ".venv" / "bin" / "python"
    ap.add_argument("--bench-python", default=str(default_python) if default_python.exists() else sys.executable)
    ap.add_argument("--out-dir", type=Path, default=OUT_DIR, help="where the benchmarks' JSON results are")
    ap.add_argument("--results-dir", type=Path, default=RESULTS_DIR, help="where REPORT.md and the chart go")
    args = ap.parse_args(argv)
    python = os.path.abspath(args.bench_python)  # not resolve(): a venv's python is a symlink
    code = 0 if args.from_json else run_benchmarks(python, args.quick, args.only)
    results = load_results(args.out_dir)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    report = args.results_dir / "REPORT.md"
    report.write_text(markdown(results, git_commit()), encoding="utf-8")
    search = results.get("search")
    subtitle = describe_machine(dig(search, "machine"))
    if search is not None:
        subtitle += f"; load average {fmt(dig(search, 'machine', 'load_avg_start', 0))}"
    try:
        draw_chart(latency_series(search), args.results_dir / CHART, subtitle)
    except ImportError as exc:  # matplotlib is in the bench extra, not in .venv
        print(f"wrote {report}; no chart: {exc} (run this script with .venv-bench/bin/python)", file=sys.stderr)
        return code or 1
    print(f"wrote {report} and {args.results_dir / CHART}", file=sys.stderr)
    return code


if __name__ == "__main__":
    raise SystemExit(main())

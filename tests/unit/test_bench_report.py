"""The benchmark report's table (tests/bench/report.py, pure parts): figures come from the JSON
the benchmarks write, and what was not measured — a missing file, a missing key, an unreadable
file — says "not measured" instead of failing. The chart itself needs matplotlib (.venv-bench)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.bench.report import NOT_MEASURED, SOURCES, headline_rows, latency_series, load_results, markdown

MACHINE = {"cpu": "Test CPU 9000", "physical_cores": 2, "logical_cores": 4, "memory_gb": 23.5,
           "os": "Linux-test", "python": "3.11.7", "load_avg_start": [1.5, 1.0, 0.5]}  # fmt: skip


def scale(knn: tuple[float, float], exact: tuple[float, float], hybrid_p95: float | None) -> dict[str, Any]:
    http: dict[str, Any] = {}
    if hybrid_p95 is not None:
        http = {"1_client": {"p50": 20.0, "p95": hybrid_p95}, "8_clients": {"p95": 90.5, "requests_per_s": 44.0}}
    return {
        "knn": {"knn_ms": {"p50": knn[0], "p95": knn[1]}, "numpy_exact_ms": {"p50": exact[0], "p95": exact[1]},
                "recall_at_10": 0.987},
        "http": http,
    }  # fmt: skip


def write(out: Path, name: str, data: Any) -> None:
    (out / f"{name}.json").write_text(json.dumps(data) if not isinstance(data, str) else data)


def row_values(results: dict[str, Any]) -> dict[str, str]:
    return {f"{r.area}: {r.figure}": r.value for r in headline_rows(results)}


def test_no_results_at_all_is_a_report_of_not_measured(tmp_path: Path) -> None:
    results = load_results(tmp_path)
    assert results == {}
    text = markdown(results)
    assert f"Machine: {NOT_MEASURED}" in text
    assert all(v == NOT_MEASURED for v in row_values(results).values())
    for name in SOURCES:
        assert f"`{name}.json`: {NOT_MEASURED}" in text
    assert "1,000,000 chunks: KNN p50 / p95 (ours)" in text
    assert latency_series(results.get("search")) == {}


def test_the_table_reads_the_figures_and_marks_the_gaps(tmp_path: Path) -> None:
    write(tmp_path, "search", {
        "machine": MACHINE, "query_embedding_ms": {"p50": 7.0, "p95": 12.5},
        "scales": {"10000": scale((0.9, 1.4), (1.2, 2.0), 25.0), "100000": scale((3.1, 4.2), (11.0, 14.0), None)},
    })  # fmt: skip
    write(
        tmp_path, "startup", {"machine": MACHINE, "summary": {"sidecar_fresh_data_dir": {"ready_s": {"median": 0.68}}}}
    )
    write(tmp_path, "embed", "{not json")
    write(tmp_path, "run_all", {"machine": MACHINE, "quick": True, "benchmarks": []})
    results = load_results(tmp_path)
    assert set(results) == {"search", "startup", "run_all"}
    v = row_values(results)
    assert v["Search: query embedding alone p50 / p95"] == "7.00 / 12.50 ms"
    assert v["Search: 10,000 chunks: KNN p50 / p95 (ours)"] == "0.90 / 1.40 ms"
    assert v["Search: 10,000 chunks: numpy exact scan p50 / p95"] == "1.20 / 2.00 ms"
    assert v["Search: 10,000 chunks: recall@10 vs exact"] == "0.987"
    assert v["Search: 10,000 chunks: hybrid end to end p95, 1 client"] == "25.0 ms"
    assert v["Search: 10,000 chunks: hybrid end to end p95, 8 clients"] == "90.5 ms, 44.0 req/s"
    assert v["Search: 100,000 chunks: hybrid end to end p95, 1 client"] == NOT_MEASURED
    assert v["Search: 1,000,000 chunks: KNN p50 / p95 (ours)"] == NOT_MEASURED
    assert v["Start-up: spawn → ready line, fresh data dir (median)"] == "0.68 s"
    assert v["Start-up: SIGTERM → exit (median)"] == NOT_MEASURED  # the file lacks the key
    assert v["Embedding: peak RSS (ours)"] == NOT_MEASURED  # the file is unreadable
    text = markdown(results, commit="abc1234")
    assert "Machine: Test CPU 9000, 2 physical / 4 logical cores, 23.5 GiB RAM, Linux-test, Python 3.11.7" in text
    assert "quick (smoke run)" in text and "abc1234" in text
    assert "| Search | 10,000 chunks: KNN p50 / p95 (ours) | 0.90 / 1.40 ms | search |" in text
    assert f"`embed.json`: {NOT_MEASURED}" in text
    assert "`search.json`: written " in text


def test_the_chart_gets_only_measured_points_in_corpus_order() -> None:
    search = {"scales": {"100000": scale((3.1, 4.2), (11.0, 14.0), None), "10000": scale((0.9, 1.4), (1.2, 2.0), 25.0)}}
    lines = latency_series(search)
    assert lines["KNN p50 (ours)"] == [(10_000, 0.9), (100_000, 3.1)]
    assert lines["numpy exact p95"] == [(10_000, 2.0), (100_000, 14.0)]
    assert lines["hybrid end to end p95 (HTTP, 1 client)"] == [(10_000, 25.0)]


def test_machines_written_with_the_bundle_benchmarks_keys_are_named_too(tmp_path: Path) -> None:
    bundle_machine = {"cpu": "Other CPU", "cores_physical": 8, "cores_logical": 16, "ram_gb": 64.0, "os": "Linux-b",
                      "python": "3.12.1", "load_avg_start": [0.1, 0.1, 0.1]}  # fmt: skip
    write(tmp_path, "bundle", {"machine": bundle_machine, "ready_ratio": 0.73, "bundle": {"size_mb": 187.2}})
    write(tmp_path, "startup", {"machine": MACHINE})
    results = load_results(tmp_path)
    text = markdown(results)
    assert "Other CPU, 8 physical / 16 logical cores, 64.0 GiB RAM, Linux-b, Python 3.12.1 (bundle)" in text
    assert "Test CPU 9000" in text
    v = row_values(results)
    assert v["Bundle: ready line vs source mode (goal ≤ 1.5×)"] == "0.73×"
    assert v["Bundle: size on disk (goal ≤ 250 MB)"] == "187 MB"

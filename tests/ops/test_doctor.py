"""``docsidecar doctor`` rebuilds a damaged or deleted derived index (FTS5 keyword index, vec0
vector index) from the canonical tables: search works again, nothing canonical changes, no
document is re-ingested or re-embedded. Damage it cannot rebuild is reported, never hidden.

The corrupted databases are real ones (three PostgreSQL manual pages indexed with the real
model, tests/ops/conftest.py), damaged with plain SQL on a separate connection while no sidecar
runs (or through the running sidecar's writer, for the API case).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backend.cli import main as cli_main
from backend.embed.onnx_embedder import OnnxEmbedder
from backend.osdeps.filelock import InstanceLock
from backend.search.service import SearchRequest, SearchService
from backend.settings import Settings
from backend.store import Store
from tests.helpers.index_check import index_problems, open_db
from tests.helpers.process import start_sidecar
from tests.ingest.harness import CountingEmbedding, running_app
from tests.search.indexed import IndexedCorpus

pytestmark = pytest.mark.anyio
MODEL = "all-MiniLM-L6-v2-int8"

CORRUPTIONS: dict[str, tuple[list[str], str]] = {
    "keyword index dropped": (["DROP TABLE chunks_fts"], "rebuild_fts"),
    "keyword index triggers dropped": (
        ["DROP TRIGGER chunks_fts_insert", "DROP TRIGGER chunks_fts_delete"],
        "rebuild_fts",
    ),
    "keyword index data emptied": (["DELETE FROM chunks_fts_data"], "rebuild_fts"),
    "keyword index config damaged": (["UPDATE chunks_fts_config SET v = 99"], "rebuild_fts"),
    "keyword index docsize dropped": (["DROP TABLE chunks_fts_docsize"], "rebuild_fts"),
    "keyword rows missing": (
        [
            "INSERT INTO chunks_fts(chunks_fts, rowid, text, heading_path) "
            "SELECT 'delete', id, text, heading_path FROM chunks WHERE id % 2 = 0"
        ],
        "rebuild_fts",
    ),
    "vector rows deleted": (["DELETE FROM vec_chunks_1 WHERE chunk_id % 3 = 0"], f"rebuild_vectors:{MODEL}"),
    "vector bits overwritten": (
        ["UPDATE vec_chunks_1_vector_chunks00 SET vectors = randomblob(length(vectors))"],
        f"rebuild_vectors:{MODEL}",
    ),
    "vector shadow table dropped": (["DROP TABLE vec_chunks_1_chunks"], f"rebuild_vectors:{MODEL}"),
    "vector table dropped": (["DROP TABLE vec_chunks_1"], f"rebuild_vectors:{MODEL}"),
}


def corrupt(data_dir: Path, statements: list[str]) -> None:
    conn = open_db(data_dir, readonly=False)
    try:
        for sql in statements:
            conn.execute(sql)
    finally:
        conn.close()


def canonical(data_dir: Path) -> dict[str, Any]:
    """What must never change: documents, chunks, vectors, jobs."""
    conn = open_db(data_dir)
    try:
        out: dict[str, Any] = {}
        for table, order in (("documents", "id"), ("chunks", "id"), ("embeddings", "chunk_id, model_id")):
            digest = hashlib.sha256()
            for row in conn.execute(f"SELECT * FROM {table} ORDER BY {order}"):
                digest.update(repr(row).encode())
            out[table] = digest.hexdigest()
        out["jobs"] = conn.execute("SELECT count(*), max(id) FROM jobs").fetchone()
        return out
    finally:
        conn.close()


def run_doctor(data_dir: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, dict[str, Any]]:
    code = cli_main(["--data-dir", str(data_dir), "doctor", "--json", *extra])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else {}


class QueryEmbedder:
    def __init__(self, embedder: OnnxEmbedder) -> None:
        self.embedder = embedder


@pytest.fixture(scope="module")
def query_embedder() -> Iterator[QueryEmbedder]:
    from backend.embed.manifest import find_manifest
    from backend.resources import default_models_dir

    manifest = find_manifest(default_models_dir(), MODEL)
    yield QueryEmbedder(OnnxEmbedder.load(manifest, manifest.dir_in(default_models_dir()), threads=1))


def top_documents(data_dir: Path, source: QueryEmbedder, query: str, mode: str) -> list[str]:
    store = Store(data_dir)
    store.start()
    search = SearchService(store, source)
    try:
        result = search.search(SearchRequest(query=query, mode=mode, k=3))  # type: ignore[arg-type]
        return [h["document_id"] for h in result["hits"]]
    finally:
        store.stop()


@pytest.mark.parametrize("damage", list(CORRUPTIONS))
def test_a_damaged_derived_index_is_rebuilt_from_the_canonical_tables(
    damage: str, corpus: IndexedCorpus, query_embedder: QueryEmbedder, capsys: pytest.CaptureFixture[str]
) -> None:
    statements, repair = CORRUPTIONS[damage]
    before = canonical(corpus.data_dir)
    corrupt(corpus.data_dir, statements)

    code, report = run_doctor(corpus.data_dir, capsys)

    assert code == 0, report
    assert report["problems_found"], f"{damage} was not detected"
    assert repair in {r["action"] for r in report["repaired"]}, report["repaired"]
    assert report["remaining"] == [] and report["ok"] is True and report["repair_failed"] == []
    assert canonical(corpus.data_dir) == before  # nothing canonical touched, no job queued
    conn = open_db(corpus.data_dir, readonly=False)  # a fresh connection (see index_check)
    try:
        assert index_problems(conn, integrity=True, fts_check=True) == []
    finally:
        conn.close()
    wal = corpus.documents["wal-intro.html"]
    assert top_documents(corpus.data_dir, query_embedder, "write-ahead log", "keyword")[0] == wal
    assert (
        top_documents(corpus.data_dir, query_embedder, "how are changes logged before data files", "semantic")[0] == wal
    )
    # the next run finds nothing left to do
    assert run_doctor(corpus.data_dir, capsys)[1]["problems_found"] == []


def test_check_only_reports_and_changes_nothing(corpus: IndexedCorpus, capsys: pytest.CaptureFixture[str]) -> None:
    corrupt(corpus.data_dir, ["DELETE FROM vec_chunks_1", "DELETE FROM chunks_fts_data"])
    code, report = run_doctor(corpus.data_dir, capsys, "--check-only")
    assert code == 1 and report["mode"] == "check" and report["repaired"] == []
    assert {f["repair"] for f in report["remaining"]} == {"rebuild_fts", f"rebuild_vectors:{MODEL}"}
    assert "check only" in report["summary"]
    again = run_doctor(corpus.data_dir, capsys, "--check-only")[1]
    assert again["problems_found"] == report["problems_found"]  # still broken: nothing was changed


def test_a_healthy_database_is_reported_healthy(corpus: IndexedCorpus, capsys: pytest.CaptureFixture[str]) -> None:
    before = canonical(corpus.data_dir)
    code, report = run_doctor(corpus.data_dir, capsys, "--quick")
    assert code == 0 and report["problems_found"] == [] and report["summary"] == "healthy: no problems found"
    assert canonical(corpus.data_dir) == before


def test_orphans_and_wrong_counts_are_repaired_lost_uploads_reported(
    corpus: IndexedCorpus, capsys: pytest.CaptureFixture[str]
) -> None:
    conn = open_db(corpus.data_dir, readonly=False)
    try:
        conn.execute("PRAGMA foreign_keys = OFF")  # what a damaged or hand-edited file can hold
        conn.execute(
            "INSERT INTO chunks(document_id, ordinal, text, sha256, char_start, char_end, token_count) "
            "VALUES ('no-such-document', 0, 'orphaned words', 'x', 0, 14, 3)"
        )
        conn.execute(
            "UPDATE documents SET chunk_count = chunk_count + 5 WHERE id = ?", (corpus.documents["wal-intro.html"],)
        )
        conn.execute(
            "INSERT INTO documents(id, source, filename, blob_key, status, created_at, updated_at) "
            "VALUES ('lost-upload', 'upload', 'report.pdf', ?, 'queued', 0, 0)",
            ("ab" * 32,),
        )
    finally:
        conn.close()
    code, report = run_doctor(corpus.data_dir, capsys)
    actions = {r["action"] for r in report["repaired"]}
    assert {"delete_orphans", "fix_chunk_counts"} <= actions
    assert code == 1 and not report["ok"]  # the lost upload cannot be rebuilt: said, not hidden
    (lost,) = report["remaining"]
    assert lost["repair"] is None and "report.pdf" in lost["message"] and "add the files again" in lost["message"]
    assert "cannot be rebuilt" in report["summary"]
    conn = open_db(corpus.data_dir)
    try:
        assert conn.execute("SELECT count(*) FROM chunks WHERE document_id = 'no-such-document'").fetchone()[0] == 0
        assert [r for r in conn.execute("PRAGMA foreign_key_check")] == []
    finally:
        conn.close()


def test_refuses_when_the_lock_is_held_or_there_is_no_database(
    corpus: IndexedCorpus, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lock = InstanceLock(corpus.data_dir / "docsidecar.lock")
    lock.acquire()
    try:
        assert cli_main(["--data-dir", str(corpus.data_dir), "doctor"]) == 3
        assert "cannot be reached" in capsys.readouterr().err
    finally:
        lock.release()
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    assert cli_main(["--data-dir", str(empty), "doctor"]) == 2
    assert "no docsidecar database" in capsys.readouterr().err
    assert not (empty / "docsidecar.db").exists()  # it did not create one


async def test_doctor_through_the_running_sidecar_repairs_without_re_embedding(corpus: IndexedCorpus) -> None:
    settings = Settings.load({}, {"data_dir": corpus.data_dir})
    holder: list[CountingEmbedding] = []

    def count_document_embeddings(services: Any) -> None:
        holder.append(CountingEmbedding(services.embedding))
        services.ingest.pipeline.embedding = holder[0]

    async with running_app(settings, count_document_embeddings) as (client, services):
        assert services.embedding.wait_ready(120)
        wal = corpus.documents["wal-intro.html"]
        query = {"query": "write-ahead log", "k": 3}
        assert (await client.post("/v1/search", json={**query, "mode": "semantic"})).json()["hits"][0][
            "document_id"
        ] == wal
        with services.store.read() as conn:
            jobs_before = conn.execute("SELECT count(*) FROM jobs").fetchone()[0]

        def damage(conn: Any) -> None:
            conn.execute("DELETE FROM chunks_fts_data")
            conn.execute("DELETE FROM vec_chunks_1")

        services.store.write(damage)
        r = await client.post("/v1/search", json={**query, "mode": "keyword"})
        assert r.status_code == 503 and r.json()["error"] == "index_damaged", r.text
        assert "docsidecar doctor" in r.json()["message"]
        fresh = {"query": "write-ahead log records", "k": 3, "mode": "semantic"}  # not in the result cache
        semantic = (await client.post("/v1/search", json=fresh)).json()
        assert semantic["hits"] == []  # the in-memory mirror followed the emptied vec0 table

        r = await client.post("/v1/doctor")
        report = r.json()
        assert r.status_code == 200 and report["ok"], report
        assert {r["action"] for r in report["repaired"]} == {"rebuild_fts", f"rebuild_vectors:{MODEL}"}

        for mode in ("keyword", "semantic", "hybrid"):
            r = await client.post("/v1/search", json={**query, "mode": mode})
            assert r.status_code == 200 and r.json()["hits"][0]["document_id"] == wal, (mode, r.text)
        status = (await client.get("/v1/status")).json()
        assert status["doctor"]["ok"] is True and status["doctor"]["mode"] == "repair"
        assert status["doctor"]["problems_found"] >= 2 and status["doctor"]["remaining"] == 0
        with services.store.read() as conn:
            assert conn.execute("SELECT count(*) FROM jobs").fetchone()[0] == jobs_before  # nothing re-ingested
        assert holder[0].texts == []  # no document text was embedded again
        busy = await client.post("/v1/doctor", params={"check_only": "true"})
        assert busy.status_code == 200 and busy.json()["problems_found"] == []


def test_cli_goes_through_a_running_sidecar(corpus: IndexedCorpus) -> None:
    proc = start_sidecar(corpus.data_dir)
    try:
        corrupt(corpus.data_dir, ["DELETE FROM vec_chunks_1 WHERE chunk_id % 2 = 1"])  # another connection, live
        run = subprocess.run(
            [sys.executable, "-m", "backend", "--data-dir", str(corpus.data_dir), "doctor"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        assert "[repaired] vectors" in run.stderr and "all fixed" in run.stderr
        with proc.client() as c:
            assert c.get("/v1/status").json()["doctor"]["ok"] is True
    finally:
        assert proc.stop() == 0

"""Changing the model never takes search down: a durable job builds the new model's index in the
shadow while the old one answers, then switches atomically and removes the old index.

Real parts throughout: a real SQLite file with sqlite-vec, the real ONNX model (the "new" model
B is the same files under a second manifest id, so both indexes must give the same answers),
the real ingest pipeline and job worker of ``Services``.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from backend.search.service import SearchRequest
from backend.services import Services
from backend.settings import Settings
from backend.store import index_switch
from backend.store import vectors as vector_repo
from tests.embed.conftest import ModelFiles

A = "all-MiniLM-L6-v2-int8"
B = "minilm-shadow-b"
TOPICS = [
    "Write-ahead logging keeps the database consistent after a crash. The log is replayed at start.",
    "Autovacuum removes dead tuples and updates planner statistics for tables that changed a lot.",
    "A B-tree index speeds up equality and range lookups on the indexed columns of a table.",
    "Logical replication publishes table changes to subscribers that apply them in commit order.",
]


def wait_until(pred: Callable[[], bool], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


@pytest.fixture
def models_dir(model_files: ModelFiles, tmp_path: Path) -> Path:
    """A models dir with the real model under two ids: A and B (same verified files)."""
    models = tmp_path / "models"
    models.mkdir()
    manifest = model_files.models_dir / f"{A}.toml"
    shutil.copy(manifest, models)
    (models / A).symlink_to(model_files.model_dir)
    (models / f"{B}.toml").write_text(manifest.read_text().replace(f'id = "{A}"', f'id = "{B}"'))
    (models / B).symlink_to(model_files.model_dir)
    return models


def settings_for(tmp_path: Path, models: Path, model_id: str) -> Settings:
    return Settings.load(
        {},
        {"data_dir": tmp_path / "data", "models_dir": models, "model_id": model_id, "embed_threads": 1,
         "chunk_tokens": 40, "chunk_overlap_tokens": 4},
    )  # fmt: skip


def add_docs(services: Services, folder: Path, texts: list[str], prefix: str) -> list[str]:
    folder.mkdir(exist_ok=True)
    ids = []
    for i, text in enumerate(texts):
        path = folder / f"{prefix}{i}.txt"
        path.write_text(" ".join(f"Part {k} of {prefix}{i}: {text}" for k in range(6)))
        doc, _ = services.ingest.add_path(str(path), "default", ())
        ids.append(doc.id)
    return ids


def docs_embedded(services: Services, ids: list[str]) -> bool:
    with services.store.read() as conn:
        marks = ",".join("?" * len(ids))
        rows = conn.execute(f"SELECT status FROM documents WHERE id IN ({marks})", ids).fetchall()
    return len(rows) == len(ids) and all(r[0] == "embedded" for r in rows)


def no_reembed_jobs(services: Services) -> bool:
    with services.store.read() as conn:  # a fresh snapshot per call
        return not index_switch.active_jobs(conn)


@pytest.fixture
def indexed_with_a(tmp_path: Path, models_dir: Path) -> Iterator[int]:
    """A data dir whose documents were indexed with model A; yields the number of chunks.
    The job worker is left paused, so the next start does nothing before the test says so."""
    services = Services(settings_for(tmp_path, models_dir, A))
    services.start()
    try:
        assert services.embedding.wait_ready(60)
        ids = add_docs(services, tmp_path / "docs", TOPICS, "a")
        wait_until(lambda: docs_embedded(services, ids))
        services.ingest.worker.pause()
        with services.store.read() as conn:
            n = int(conn.execute("SELECT count(*) FROM chunks").fetchone()[0])
            assert vector_repo.active_model(conn).model_id == A  # type: ignore[union-attr]
    finally:
        services.stop()
    assert n >= 8, "the fixture needs several batches of work"
    yield n


@dataclass
class View:
    """What a search would see in one read snapshot."""

    model_id: str
    state: str
    rows: int
    chunks: int
    top_hit_ok: bool
    building_rows: int | None
    search_ok: bool = False
    """The real SearchService (semantic mode) put the probe chunk first, with no warning."""


@dataclass
class Reader:
    """Reads like search does (active index from the DB, embedder for that index) in a loop."""

    services: Services
    views: list[View] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def view(self) -> View:
        with self.services.store.read() as conn:
            index = vector_repo.active_model(conn)
            assert index is not None
            chunks = conn.execute("SELECT id, text FROM chunks ORDER BY id").fetchall()
            rows = vector_repo.count_rows(conn, index.table)
            probe_id, probe_text = chunks[len(chunks) // 2]
            embedder = self.services.models.for_index(index)
            assert embedder.model_id == index.model_id
            query = vector_repo.quantize(embedder.embed_query(probe_text)).tobytes()
            hits = conn.execute(
                f"SELECT chunk_id FROM {index.table} WHERE embedding MATCH vec_bit(?) AND k = 1", (query,)
            ).fetchall()
            other = [i for i in vector_repo.list_indexes(conn) if i.state == "building"]
            building = vector_repo.count_rows(conn, other[0].table) if other else None
        found = self.services.search.search(SearchRequest(query=probe_text, mode="semantic", k=3, use_cache=False))
        search_ok = bool(found["hits"]) and found["hits"][0]["chunk_id"] == probe_id and not found["warnings"]
        return View(index.model_id, index.state, rows, len(chunks), hits == [(probe_id,)], building, search_ok)

    def loop(self) -> None:
        try:
            while not self.stop.is_set():
                self.views.append(self.view())
        except BaseException as exc:
            self.errors.append(exc)


def test_switch_builds_in_the_shadow_and_flips_atomically(
    tmp_path: Path, models_dir: Path, indexed_with_a: int
) -> None:
    n = indexed_with_a
    services = Services(settings_for(tmp_path, models_dir, B))
    services.reindex.batch = 2
    services.reindex.cleanup_delay_s = 0.0
    at_batches: list[View] = []
    reader = Reader(services)
    services.reindex.after_batch = lambda model: at_batches.append(reader.view())
    services.start()
    try:
        assert services.embedding.wait_ready(60)
        wait_until(lambda: services.models._extra[A].wait_ready(0))
        # Before the job runs: A answers, B's index exists (building, empty), one build job queued.
        before = reader.view()
        assert (before.model_id, before.state, before.rows, before.top_hit_ok) == (A, "ready", n, True)
        assert before.building_rows == 0
        with services.store.read() as conn:
            build_jobs = index_switch.active_jobs(conn, "build")
        assert [(j.state, j.payload["model_id"]) for j in build_jobs] == [("queued", B)]
        assert services.status(None)["components"]["models"]["detail"]["building_model"] == B

        thread = threading.Thread(target=reader.loop, name="t-search-reader")
        thread.start()
        services.ingest.worker.resume()
        wait_until(lambda: services.models.active_id == B and services.models.building_id is None)
        wait_until(lambda: no_reembed_jobs(services))
        wait_until(lambda: A not in services.models._extra)  # cleaned up
        wait_until(lambda: bool(reader.errors) or (bool(reader.views) and reader.views[-1].model_id == B))
        reader.stop.set()
        thread.join()
        assert not reader.errors, reader.errors

        # Every read during the build was a complete answer from A, B filling up in the shadow.
        during = [v for v in at_batches if v.model_id == A]
        assert during, "the hook saw the build in progress"
        assert all(v.state == "ready" and v.rows == n and v.top_hit_ok and v.search_ok for v in during)
        partial = [v.building_rows for v in during]
        assert partial == sorted(partial) and partial[0] == 2 and 0 < partial[-1] <= n
        # The concurrent reader: always complete, A then B, never back.
        models = [v.model_id for v in reader.views]
        assert models[0] == A and models[-1] == B
        first_b = models.index(B)
        assert set(models[:first_b]) == {A} and set(models[first_b:]) == {B}
        assert all(v.rows == v.chunks == n and v.top_hit_ok and v.search_ok for v in reader.views)

        # After: B is the only index; A's vectors, vec0 table and registry row are gone.
        after = reader.view()
        assert (after.model_id, after.state, after.rows, after.top_hit_ok, after.search_ok) == (
            B,
            "ready",
            n,
            True,
            True,
        )
        with services.store.read() as conn:
            assert [(i.model_id, i.state) for i in vector_repo.list_indexes(conn)] == [(B, "ready")]
            per_model = dict(conn.execute("SELECT model_id, count(*) FROM embeddings GROUP BY model_id").fetchall())
            assert per_model == {B: n}
            assert conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'vec_chunks_1'").fetchone() is None
        detail = services.status(None)["components"]["models"]["detail"]
        assert detail["active_model"] == B and detail["building_model"] is None
        assert not [t for t in threading.enumerate() if t.name == f"embed-loader:{A}"]
    finally:
        reader.stop.set()
        services.stop()


def test_interrupted_build_resumes_where_it_stopped(tmp_path: Path, models_dir: Path, indexed_with_a: int) -> None:
    n = indexed_with_a
    services = Services(settings_for(tmp_path, models_dir, B))
    services.reindex.batch = 2
    reached, release = threading.Event(), threading.Event()

    def hook(model: str) -> None:
        with services.store.read() as conn:
            done = index_switch.progress(conn, B).done
        if done >= 4:
            reached.set()
            release.wait(30)

    services.reindex.after_batch = hook
    services.start()
    try:
        services.ingest.worker.resume()
        assert reached.wait(120)
        stopper = threading.Thread(target=services.stop, name="t-stop")
        stopper.start()  # the worker cancels the running job at its next check
        release.set()
        stopper.join(60)
        assert not stopper.is_alive()
    finally:
        release.set()
        services.stop()
    with _reopen(tmp_path, models_dir) as kept:
        pass
    assert 4 <= kept < n, "the batches committed before the stop are kept"

    again = Services(settings_for(tmp_path, models_dir, B))
    batches: list[str] = []
    again.reindex.batch = 2
    again.reindex.cleanup_delay_s = 0.0
    again.reindex.after_batch = batches.append
    again.start()
    try:
        wait_until(lambda: again.models.active_id == B)
        assert batches.count(B) == -(-(n - kept) // 2), "only the missing vectors were embedded"
        with again.store.read() as conn:
            assert vector_repo.active_model(conn).model_id == B  # type: ignore[union-attr]
            assert index_switch.progress(conn, B).complete
    finally:
        again.stop()


class _reopen:
    """Count B's vectors in a stopped data dir with a fresh store."""

    def __init__(self, tmp_path: Path, models: Path) -> None:
        self.services = Services(settings_for(tmp_path, models, B))

    def __enter__(self) -> int:
        self.services.store.start()
        with self.services.store.read() as conn:
            return int(conn.execute("SELECT count(*) FROM embeddings WHERE model_id = ?", (B,)).fetchone()[0])

    def __exit__(self, *exc: object) -> None:
        self.services.store.stop()


def test_documents_added_during_the_build_are_searchable_before_and_after(
    tmp_path: Path, models_dir: Path, indexed_with_a: int
) -> None:
    services = Services(settings_for(tmp_path, models_dir, B))
    services.reindex.batch = 2
    services.reindex.slice_s = 0.0  # yield to document jobs after every batch
    services.reindex.cleanup_delay_s = 0.0
    added: list[str] = []
    seen_in_a: list[bool] = []

    def hook(model: str) -> None:
        if not added:
            added.extend(add_docs(services, tmp_path / "late", ["Point-in-time recovery restores a base backup."], "z"))
        elif model == A:  # the job gave the new chunks vectors of the model still answering
            with services.store.read() as conn:
                ids = [r[0] for r in conn.execute("SELECT id FROM chunks WHERE document_id = ?", (added[0],))]
                have = {r[0] for r in conn.execute("SELECT chunk_id FROM embeddings WHERE model_id = ?", (A,))}
                seen_in_a.append(bool(ids) and set(ids) <= have)

    services.reindex.after_batch = hook
    services.start()
    try:
        assert services.embedding.wait_ready(60)
        services.ingest.worker.resume()
        wait_until(lambda: services.models.active_id == B)
        assert seen_in_a and seen_in_a[-1], "new chunks got A vectors while A was active"
        assert docs_embedded(services, added)
        with services.store.read() as conn:
            assert index_switch.progress(conn, B).complete
            ids = [r[0] for r in conn.execute("SELECT id FROM chunks WHERE document_id = ?", (added[0],))]
            index = vector_repo.get_index(conn, B)
            assert index is not None
            in_b = {r[0] for r in conn.execute(f"SELECT chunk_id FROM {index.table}")}
        assert set(ids) <= in_b
    finally:
        services.stop()


def test_going_back_abandons_the_unfinished_build(tmp_path: Path, models_dir: Path, indexed_with_a: int) -> None:
    n = indexed_with_a
    services = Services(settings_for(tmp_path, models_dir, B))
    services.start()  # paused: the build job is queued, B's index registered, nothing embedded
    services.stop()
    back = Services(settings_for(tmp_path, models_dir, A))
    back.start()
    try:
        assert back.models.active_id == A and back.models.building_id is None
        back.ingest.worker.resume()
        wait_until(lambda: no_reembed_jobs(back))
        with back.store.read() as conn:
            assert [(i.model_id, i.state) for i in vector_repo.list_indexes(conn)] == [(A, "ready")]
            assert vector_repo.count_rows(conn, "vec_chunks_1") == n
            states = sorted(
                (j.payload["phase"], j.state)
                for j in (
                    index_switch.jobs.get(conn, r[0])
                    for r in conn.execute("SELECT id FROM jobs WHERE kind = 'reembed'")
                )
                if j is not None
            )
        assert states == [("build", "cancelled"), ("cleanup", "done")]
    finally:
        back.stop()


def test_empty_database_switches_at_once(tmp_path: Path, models_dir: Path) -> None:
    services = Services(settings_for(tmp_path, models_dir, B))
    services.start()
    try:
        assert services.models.active_id == B and services.models.building_id is None
        with services.store.read() as conn:
            assert vector_repo.active_model(conn).model_id == B  # type: ignore[union-attr]
        assert A not in services.models._extra  # the old model was never loaded
        assert services.embedding.wait_ready(60)
        ids = add_docs(services, tmp_path / "docs", TOPICS[:1], "e")
        wait_until(lambda: docs_embedded(services, ids))
        with services.store.read() as conn:
            assert conn.execute("SELECT DISTINCT model_id FROM embeddings").fetchall() == [(B,)]
        np.testing.assert_equal(services.models.active_embedder().model_id, B)
    finally:
        services.stop()


def test_unknown_new_model_leaves_the_old_index_answering(
    tmp_path: Path, models_dir: Path, indexed_with_a: int
) -> None:
    services = Services(settings_for(tmp_path, models_dir, "no-such-model"))
    services.start()
    try:
        comp = services.status(None)["components"]
        assert comp["models"]["state"] == "degraded"
        assert comp["models"]["error"]["error"] == "model_unknown"
        assert comp["embedding"]["state"] in {"starting", "failed"}
        wait_until(lambda: services.models._extra[A].wait_ready(0))
        view = Reader(services).view()  # semantic search still answers from A's complete index
        assert (view.model_id, view.rows, view.top_hit_ok) == (A, indexed_with_a, True)
    finally:
        services.stop()

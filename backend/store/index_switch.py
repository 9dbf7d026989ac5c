"""SQL of the zero-downtime model switch: shadow index, atomic switch, clean-up of the old one.

State lives in ``vector_indexes(model_id, table_name, dim, state)`` (``building`` → ``ready``
→ ``retired``), ``kv[search.active_model]`` (the index queries use, :mod:`backend.store.vectors`)
and durable ``reembed`` jobs. Every function runs inside the caller's transaction (writer
functions take the writer connection); the job logic is in :mod:`backend.embed.reindex_job`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import apsw
import numpy as np
import numpy.typing as npt

from backend.store import embedding_gaps, jobs
from backend.store import vectors as vector_repo

KIND = "reembed"
"""Job kind of both phases (payload ``phase``: ``build`` | ``cleanup``)."""
CLEANUP_BATCH = 5000


@dataclass(frozen=True, slots=True)
class BuildProgress:
    model_id: str
    done: int
    """Chunks that have a vector of ``model_id``."""
    total: int
    """All chunks."""

    @property
    def complete(self) -> bool:
        return self.done >= self.total


def progress(conn: apsw.Connection, model_id: str) -> BuildProgress:
    row = conn.execute("SELECT count(*) FROM chunks").fetchone()
    total = int(row[0]) if row else 0
    missing = embedding_gaps.count_chunks_without_vectors(conn, model_id)
    return BuildProgress(model_id, total - missing, total)


def gaps_from(conn: apsw.Connection, model_id: str, start_id: int, limit: int) -> list[tuple[int, str]]:
    """Up to ``limit`` chunks with ``id >= start_id`` lacking a vector of ``model_id``, by id.

    A build walks the chunks with this cursor (one pass, not a rescan per batch); the switch
    transaction re-counts every gap, so a chunk the cursor passed cannot be missed."""
    rows = conn.execute(
        "SELECT c.id, c.text FROM chunks c LEFT JOIN embeddings e ON e.chunk_id = c.id AND e.model_id = ? "
        "WHERE c.id >= ? AND e.chunk_id IS NULL ORDER BY c.id LIMIT ?",
        (model_id, start_id, limit),
    )
    return [(int(r[0]), str(r[1])) for r in rows]


def other_jobs_waiting(conn: apsw.Connection) -> bool:
    """Whether a due job of another kind (document ingest) waits behind a running build."""
    row = conn.execute(
        f"SELECT 1 FROM jobs WHERE state = 'queued' AND kind != :kind AND {jobs.due_sql()} LIMIT 1",  # noqa: S608
        {"kind": KIND, "now": time.time(), "max_backoff": jobs.MAX_BACKOFF_S},
    ).fetchone()
    return row is not None


def active_jobs(conn: apsw.Connection, phase: str | None = None) -> list[jobs.Job]:
    """Queued or running ``reembed`` jobs (of one phase if given), oldest first."""
    rows = conn.execute(
        "SELECT id FROM jobs WHERE kind = ? AND state IN ('queued', 'running') ORDER BY id", (KIND,)
    ).fetchall()
    found = [j for j in (jobs.get(conn, int(str(r[0]))) for r in rows) if j is not None]
    return [j for j in found if phase is None or j.payload.get("phase") == phase]


def enqueue(
    conn: apsw.Connection, phase: str, model_id: str, *, delay_s: float = 0.0, previous: str | None = None
) -> jobs.Job:
    """A ``reembed`` job (priority -1: document ingest goes first), due after ``delay_s``."""
    payload = {"phase": phase, "model_id": model_id} | ({"from": previous} if previous else {})
    job = jobs.enqueue(conn, KIND, payload=payload, priority=-1, max_attempts=1_000_000)
    if delay_s > 0:
        conn.execute("UPDATE jobs SET not_before = ? WHERE id = ?", (time.time() + delay_s, job.id))
    return job


def begin_build(conn: apsw.Connection, model_id: str, dim: int, previous: str | None) -> jobs.Job:
    """Register (or revive) ``model_id``'s index as ``building`` and make sure one build job is
    queued for it; build jobs of other models are cancelled. Returns the build job."""
    vector_repo.ensure_index(conn, model_id, dim)
    vector_repo.set_index_state(conn, model_id, "building")
    current = None
    for job in active_jobs(conn, "build"):
        if job.payload.get("model_id") == model_id and current is None:
            current = job
        elif job.state == "queued":
            jobs.cancel(conn, job.id)
    if current is not None:
        return current
    return enqueue(conn, "build", model_id, previous=previous)


def abandon_builds(conn: apsw.Connection, keep: Sequence[str]) -> list[str]:
    """Retire ``building`` indexes of models not in ``keep`` (a switch the user went back on)
    and queue their clean-up; cancel their queued build jobs. Returns the retired model ids."""
    retired = []
    for index in vector_repo.list_indexes(conn):
        if index.state == "building" and index.model_id not in keep:
            vector_repo.set_index_state(conn, index.model_id, "retired")
            retired.append(index.model_id)
    for job in active_jobs(conn, "build"):
        if job.payload.get("model_id") not in keep and job.state == "queued":
            jobs.cancel(conn, job.id)
    queued_cleanups = {j.payload.get("model_id") for j in active_jobs(conn, "cleanup")}
    for model_id in retired:
        if model_id not in queued_cleanups:
            enqueue(conn, "cleanup", model_id)
    return retired


def put_shadow_vectors(
    conn: apsw.Connection, model_id: str, rows: Sequence[tuple[int, npt.NDArray[np.float32]]]
) -> int:
    """Store vectors of the index being built for chunks that still exist. Does not bump the
    search generation: nothing queries this index before the switch (which bumps it)."""
    ids = [cid for cid, _ in rows]
    existing: set[int] = set()
    for start in range(0, len(ids), 500):
        part = ids[start : start + 500]
        marks = ",".join("?" * len(part))
        existing |= {int(r[0]) for r in conn.execute(f"SELECT id FROM chunks WHERE id IN ({marks})", part)}  # noqa: S608
    keep = [(cid, vec) for cid, vec in rows if cid in existing]
    if keep:
        vector_repo.put_vectors(conn, model_id, keep)
    return len(keep)


@dataclass(frozen=True, slots=True)
class Switched:
    model_id: str
    previous: str | None
    """The model that was active before (its clean-up is queued), if any."""


def switch_active(conn: apsw.Connection, model_id: str, *, cleanup_delay_s: float) -> Switched | None:
    """The atomic switch: if every chunk has a vector of ``model_id``, mark its index ``ready``,
    the old active one ``retired``, point ``search.active_model`` at it, bump the generation and
    queue the old index's clean-up — all in this one transaction.

    Returns ``None`` (nothing changed) while chunks still lack a vector or the index is missing.
    """
    if embedding_gaps.count_chunks_without_vectors(conn, model_id) > 0:
        return None
    if vector_repo.get_index(conn, model_id) is None:
        return None
    previous = vector_repo.active_model(conn)
    vector_repo.set_index_state(conn, model_id, "ready")
    vector_repo.set_active_model(conn, model_id)
    vector_repo.bump_generation(conn)
    if previous is None or previous.model_id == model_id:
        return Switched(model_id, None)
    vector_repo.set_index_state(conn, previous.model_id, "retired")
    enqueue(conn, "cleanup", previous.model_id, delay_s=cleanup_delay_s)
    return Switched(model_id, previous.model_id)


def delete_vectors_batch(conn: apsw.Connection, model_id: str, limit: int = CLEANUP_BATCH) -> int:
    """Delete up to ``limit`` canonical vectors of a retired model; returns how many went."""
    conn.execute(
        "DELETE FROM embeddings WHERE model_id = ? AND chunk_id IN "
        "(SELECT chunk_id FROM embeddings WHERE model_id = ? LIMIT ?)",
        (model_id, model_id, limit),
    )
    return int(conn.changes())


def drop_index(conn: apsw.Connection, model_id: str) -> bool:
    """Drop a ``retired`` index's vec0 table and registry row (never an active or building one)."""
    index = vector_repo.get_index(conn, model_id)
    if index is None or index.state != "retired":
        return False
    conn.execute(f"DROP TABLE IF EXISTS {index.table}")
    conn.execute("DELETE FROM vector_indexes WHERE model_id = ?", (model_id,))
    return True


def has_vectors(conn: apsw.Connection, model_id: str) -> bool:
    return conn.execute("SELECT 1 FROM embeddings WHERE model_id = ? LIMIT 1", (model_id,)).fetchone() is not None


def redimension_empty(conn: apsw.Connection, model_id: str, dim: int) -> bool:
    """Give ``model_id``'s index the dimension ``dim`` when it is registered with another one
    but holds no vector (an external provider first configured with a wrong dimension): a new
    vec0 table, same state. True if it changed; an index with vectors is never touched."""
    index = vector_repo.get_index(conn, model_id)
    if index is None or index.dim == dim or has_vectors(conn, model_id):
        return False
    conn.execute(f"DROP TABLE IF EXISTS {index.table}")
    conn.execute("DELETE FROM vector_indexes WHERE model_id = ?", (model_id,))
    vector_repo.ensure_index(conn, model_id, dim)
    vector_repo.set_index_state(conn, model_id, index.state)
    vector_repo.bump_generation(conn)
    return True


def describe(conn: apsw.Connection) -> dict[str, object]:
    """Indexes, the active one and pending switch jobs (for ``/v1/status``)."""
    active = vector_repo.active_model(conn)
    return {
        "active_model": active.model_id if active else None,
        "indexes": [{"model_id": i.model_id, "dim": i.dim, "state": i.state} for i in vector_repo.list_indexes(conn)],
        "jobs": [{"id": j.id, "state": j.state, **j.payload} for j in active_jobs(conn)],
    }

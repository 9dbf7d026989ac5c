"""Jobs repository: durable work items and their state machine.

``queued → running → done | failed | cancelled``; a transient failure goes back to ``queued``
with ``not_before`` pushed out by exponential backoff. On start-up, jobs left ``running`` by
a crash are re-queued with one attempt counted, so a file that crashes the process every time
ends ``failed`` instead of looping forever.

Wall-clock jumps: a queued job whose ``updated_at`` (when its delay was set) is later than
"now", or whose ``not_before`` is further in the future than the longest possible backoff, can
only come from a clock that jumped backwards, so it is treated as due (:func:`due_sql`): after
a backward jump no job waits longer than the delay it was given. A forward jump only makes
waiting jobs due early. Callers that schedule pass ``now`` from their clock
(:mod:`backend.maintenance.clock`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import apsw

STATES = ("queued", "running", "done", "failed", "cancelled")
MAX_BACKOFF_S = 300.0
_COLUMNS = (
    "id, kind, document_id, payload, state, priority, attempts, max_attempts, not_before, "
    "progress_done, progress_total, error, created_at, started_at, finished_at, updated_at"
)


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    kind: str
    document_id: str | None
    payload: dict[str, Any]
    state: str
    priority: int
    attempts: int
    max_attempts: int
    not_before: float
    progress_done: int
    progress_total: int
    error: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    updated_at: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "document_id": self.document_id,
            "state": self.state,
            "attempts": self.attempts,
            "progress": {"done": self.progress_done, "total": self.progress_total},
            "error": self.error,
            "payload": self.payload,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }


def _job(row: tuple[Any, ...]) -> Job:
    values = list(row)
    values[3] = json.loads(values[3])
    return Job(*values)


DEFAULT_RETRY_BASE_S = 2.0


def backoff(attempts: int, base: float = DEFAULT_RETRY_BASE_S) -> float:
    """Seconds to wait before attempt ``attempts + 1``: base, 2·base, 4·base, … capped at MAX_BACKOFF_S."""
    return float(min(MAX_BACKOFF_S, base * 2.0 ** (max(1, attempts) - 1)))


def enqueue(
    conn: apsw.Connection,
    kind: str,
    *,
    document_id: str | None = None,
    payload: dict[str, Any] | None = None,
    priority: int = 0,
    max_attempts: int = 5,
) -> Job:
    now = time.time()
    conn.execute(
        "INSERT INTO jobs(kind, document_id, payload, priority, max_attempts, created_at, updated_at) "
        "VALUES (?,?,?,?,?,?,?)",
        (kind, document_id, json.dumps(payload or {}), priority, max_attempts, now, now),
    )
    job = get(conn, int(conn.last_insert_rowid()))
    assert job is not None
    return job


def active_for_document(
    conn: apsw.Connection, document_id: str, kind: str, states: tuple[str, ...] = ("queued", "running")
) -> Job | None:
    """The newest job of ``kind`` for the document in one of ``states``.

    Callers that queue work because the *file* changed pass ``states=("queued",)``: a running
    job may already have read the old bytes, so a new change needs a new job."""
    marks = ",".join("?" * len(states))
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM jobs WHERE document_id = ? AND kind = ? AND state IN ({marks}) "  # noqa: S608
        "ORDER BY id DESC LIMIT 1",
        (document_id, kind, *states),
    ).fetchone()
    return _job(row) if row else None


def latest_for_document(conn: apsw.Connection, document_id: str, kind: str) -> Job | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM jobs WHERE document_id = ? AND kind = ? ORDER BY id DESC LIMIT 1",  # noqa: S608
        (document_id, kind),
    ).fetchone()
    return _job(row) if row else None


def get(conn: apsw.Connection, job_id: int) -> Job | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()  # noqa: S608
    return _job(row) if row else None


def due_sql(now_param: str = ":now") -> str:
    """SQL condition (on ``jobs`` columns) for "due at ``now_param``", robust to clock jumps;
    bind ``:max_backoff`` to :data:`MAX_BACKOFF_S` as well."""
    return f"(not_before <= {now_param} OR updated_at > {now_param} OR not_before > {now_param} + :max_backoff)"


def claim_next(conn: apsw.Connection, kinds: tuple[str, ...], now: float | None = None) -> Job | None:
    """Mark the next due queued job of these kinds running and return it."""
    if not kinds:
        return None
    now = time.time() if now is None else now
    params: dict[str, object] = {f"k{i}": kind for i, kind in enumerate(kinds)}
    params |= {"now": now, "max_backoff": MAX_BACKOFF_S}
    marks = ",".join(f":k{i}" for i in range(len(kinds)))
    row = conn.execute(
        f"SELECT id FROM jobs WHERE state = 'queued' AND kind IN ({marks}) "  # noqa: S608
        f"AND {due_sql()} ORDER BY priority DESC, id LIMIT 1",
        params,
    ).fetchone()
    if row is None:
        return None
    conn.execute(
        "UPDATE jobs SET state = 'running', started_at = ?, updated_at = ?, error = NULL WHERE id = ?",
        (now, now, row[0]),
    )
    return get(conn, int(row[0]))


def next_due_in(conn: apsw.Connection, kinds: tuple[str, ...], now: float | None = None) -> float | None:
    """Seconds until the earliest queued job of these kinds is due (0 = now; None = no job)."""
    if not kinds:
        return None
    now = time.time() if now is None else now
    params: dict[str, object] = {f"k{i}": kind for i, kind in enumerate(kinds)}
    params |= {"now": now, "max_backoff": MAX_BACKOFF_S}
    marks = ",".join(f":k{i}" for i in range(len(kinds)))
    row = conn.execute(
        f"SELECT min(CASE WHEN {due_sql()} THEN :now ELSE not_before END) FROM jobs "  # noqa: S608
        f"WHERE state = 'queued' AND kind IN ({marks})",
        params,
    ).fetchone()
    if row is None or row[0] is None:
        return None
    return max(0.0, float(row[0]) - now)


def progress(conn: apsw.Connection, job_id: int, done: int, total: int) -> None:
    conn.execute(
        "UPDATE jobs SET progress_done = ?, progress_total = ?, updated_at = ? WHERE id = ?",
        (done, total, time.time(), job_id),
    )


def finish(conn: apsw.Connection, job_id: int, state: str = "done", error: str | None = None) -> None:
    if state not in {"done", "failed", "cancelled"}:
        raise ValueError(state)
    now = time.time()
    conn.execute(
        "UPDATE jobs SET state = ?, error = ?, finished_at = ?, updated_at = ? WHERE id = ?",
        (state, error, now, now, job_id),
    )


def retry_later(
    conn: apsw.Connection,
    job: Job,
    error: str,
    *,
    count_attempt: bool = True,
    delay: float | None = None,
    base: float = DEFAULT_RETRY_BASE_S,
    now: float | None = None,
) -> str:
    """Re-queue after a transient failure (or fail once attempts are used up); returns the new state."""
    attempts = job.attempts + (1 if count_attempt else 0)
    now = time.time() if now is None else now
    if attempts >= job.max_attempts:
        conn.execute("UPDATE jobs SET attempts = ? WHERE id = ?", (attempts, job.id))
        finish(conn, job.id, "failed", f"{error} (gave up after {attempts} attempts)")
        return "failed"
    if delay is None:
        delay = backoff(attempts, base) if count_attempt else 5.0
    conn.execute(
        "UPDATE jobs SET state = 'queued', attempts = ?, not_before = ?, error = ?, updated_at = ? WHERE id = ?",
        (attempts, now + delay, error, now, job.id),
    )
    return "queued"


def cancel(conn: apsw.Connection, job_id: int) -> Job | None:
    """Cancel a queued job at once; a running one is cancelled by its worker. Returns the job."""
    conn.execute(
        "UPDATE jobs SET state = 'cancelled', finished_at = ?, updated_at = ? WHERE id = ? AND state = 'queued'",
        (time.time(), time.time(), job_id),
    )
    return get(conn, job_id)


INTERRUPTED = "interrupted by a restart of the sidecar"


def requeue(conn: apsw.Connection, job_id: int) -> None:
    """Put a running job back (orderly shutdown): due at once, no attempt counted."""
    conn.execute(
        "UPDATE jobs SET state = 'queued', not_before = 0, updated_at = ? WHERE id = ? AND state = 'running'",
        (time.time(), job_id),
    )


def cancel_queued_for_document(conn: apsw.Connection, document_id: str, reason: str) -> int:
    now = time.time()
    conn.execute(
        "UPDATE jobs SET state = 'cancelled', error = ?, finished_at = ?, updated_at = ? "
        "WHERE document_id = ? AND state = 'queued'",
        (reason, now, now, document_id),
    )
    return int(conn.changes())


def recover_interrupted(conn: apsw.Connection) -> list[tuple[Job, str]]:
    """Re-queue jobs a crash left ``running`` (counting the attempt, with the usual backoff).

    Returns (job, new state) for each: ``queued`` or ``failed`` once the job has used up its
    attempts, so a file that kills the process every time cannot crash-loop the sidecar. The
    backoff lets the rest of the queue run first: a job that crashed the process waits, and a
    job that was merely unlucky (the user quit during it, twice) is not hit first again."""
    stuck = [_job(r) for r in conn.execute(f"SELECT {_COLUMNS} FROM jobs WHERE state = 'running'")]  # noqa: S608
    return [(job, retry_later(conn, job, INTERRUPTED)) for job in stuck]


@dataclass(frozen=True, slots=True)
class JobQuery:
    state: str | None = None
    kind: str | None = None
    document_id: str | None = None
    limit: int = 50
    before_id: int | None = None


def list_jobs(conn: apsw.Connection, q: JobQuery) -> tuple[list[Job], int | None]:
    where: list[str] = []
    params: list[str | int] = []
    for column, value in (("state", q.state), ("kind", q.kind), ("document_id", q.document_id)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if q.before_id is not None:
        where.append("id < ?")
        params.append(q.before_id)
    sql = f"SELECT {_COLUMNS} FROM jobs"  # noqa: S608
    if where:
        sql += " WHERE " + " AND ".join(where)
    rows = conn.execute(sql + " ORDER BY id DESC LIMIT ?", (*params, q.limit + 1)).fetchall()
    jobs = [_job(r) for r in rows[: q.limit]]
    return jobs, (jobs[-1].id if len(rows) > q.limit else None)


def counts_by_state(conn: apsw.Connection) -> dict[str, int]:
    return {str(s): int(n) for s, n in conn.execute("SELECT state, count(*) FROM jobs GROUP BY state")}


def count_queued(conn: apsw.Connection) -> int:
    """Queued jobs (a range of the ``jobs_pending`` index: does not grow with finished jobs)."""
    row = conn.execute("SELECT count(*) FROM jobs WHERE state = 'queued'").fetchone()
    return int(row[0]) if row else 0


def queue_depth(conn: apsw.Connection, now: float | None = None) -> list[tuple[str, str, bool, int]]:
    """``(kind, state, due, count)`` of the queued and running jobs (``due``: a queued job whose
    retry delay is over; a range of the ``jobs_pending`` index, as :func:`count_queued`)."""
    now = time.time() if now is None else now
    rows = conn.execute(
        f"SELECT kind, state, state = 'queued' AND {due_sql()}, count(*) FROM jobs "  # noqa: S608
        "WHERE state IN ('queued', 'running') GROUP BY 1, 2, 3",
        {"now": now, "max_backoff": MAX_BACKOFF_S},
    ).fetchall()
    return [(str(kind), str(state), bool(due), int(n or 0)) for kind, state, due, n in rows]

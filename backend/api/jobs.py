"""Jobs and the ingest queue: list, read, cancel, pause, resume."""

from __future__ import annotations

from typing import Annotated

from litestar import get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery, QueryParameter

from backend.api.params import QueryRowId, RowId
from backend.api.schemas import reply
from backend.api.schemas.errors import errors
from backend.api.schemas.library import JobOut, JobPage, QueueState
from backend.errors import NotFound, ValidationFailed
from backend.services import Services
from backend.store import jobs as job_repo


@get("/v1/jobs", summary="List jobs (newest first)", tags=["jobs"], sync_to_thread=True, responses=errors(422))
def list_jobs(
    services: NamedDependency[Services],
    job_state: Annotated[str | None, QueryParameter(name="state")] = None,
    kind: FromQuery[str | None] = None,
    document_id: FromQuery[str | None] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
    before: QueryRowId = None,
) -> JobPage:
    if job_state is not None and job_state not in job_repo.STATES:
        raise ValidationFailed(f"unknown state {job_state!r}", detail={"allowed": list(job_repo.STATES)})
    with services.store.read() as conn:
        items, nxt = job_repo.list_jobs(conn, job_repo.JobQuery(job_state, kind, document_id, limit, before))
    return reply({"items": [j.to_dict() for j in items], "next_before": nxt}, JobPage)


@get(
    "/v1/jobs/{job_id:int}",
    summary="One job with its progress",
    tags=["jobs"],
    sync_to_thread=True,
    responses=errors(404, 422),
)
def get_job(services: NamedDependency[Services], job_id: RowId) -> JobOut:
    with services.store.read() as conn:
        job = job_repo.get(conn, job_id)
    if job is None:
        raise NotFound(f"no job {job_id}", detail={"job_id": job_id})
    return reply(job.to_dict(), JobOut)


@post(
    "/v1/jobs/{job_id:int}/cancel",
    summary="Cancel a queued or running job",
    tags=["jobs"],
    status_code=202,
    sync_to_thread=True,
    responses=errors(404, 409, 422),
)
def cancel_job(services: NamedDependency[Services], job_id: RowId) -> JobOut:
    return reply(services.ingest.cancel_job(job_id).to_dict(), JobOut)


@get(
    "/v1/ingest",
    summary="Ingest queue state (paused, queued, running job)",
    tags=["jobs"],
    sync_to_thread=True,
    responses=errors(),
)
def ingest_state(services: NamedDependency[Services]) -> QueueState:
    return reply(services.ingest.queue_state(), QueueState)


@post(
    "/v1/ingest/pause",
    summary="Pause ingest (e.g. on battery); the running job finishes",
    tags=["jobs"],
    status_code=200,
    sync_to_thread=True,
    responses=errors(),
)
def pause(services: NamedDependency[Services]) -> QueueState:
    services.ingest.worker.pause()
    return reply(services.ingest.queue_state(), QueueState)


@post(
    "/v1/ingest/resume",
    summary="Resume ingest",
    tags=["jobs"],
    status_code=200,
    sync_to_thread=True,
    responses=errors(),
)
def resume(services: NamedDependency[Services]) -> QueueState:
    services.ingest.worker.resume()
    return reply(services.ingest.queue_state(), QueueState)


ROUTES = [list_jobs, get_job, cancel_job, ingest_state, pause, resume]

"""Jobs and the ingest queue: list, read, cancel, pause, resume."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, QueryParameter

from backend.errors import NotFound, ValidationFailed
from backend.services import Services
from backend.store import jobs as job_repo


@get("/v1/jobs", summary="List jobs (newest first)", tags=["jobs"], sync_to_thread=True)
def list_jobs(
    services: NamedDependency[Services],
    job_state: Annotated[str | None, QueryParameter(name="state")] = None,
    kind: FromQuery[str | None] = None,
    document_id: FromQuery[str | None] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
    before: Annotated[int | None, QueryParameter(ge=1)] = None,
) -> dict[str, Any]:
    if job_state is not None and job_state not in job_repo.STATES:
        raise ValidationFailed(f"unknown state {job_state!r}", detail={"allowed": list(job_repo.STATES)})
    with services.store.read() as conn:
        items, nxt = job_repo.list_jobs(conn, job_repo.JobQuery(job_state, kind, document_id, limit, before))
    return {"items": [j.to_dict() for j in items], "next_before": nxt}


@get("/v1/jobs/{job_id:int}", summary="One job with its progress", tags=["jobs"], sync_to_thread=True)
def get_job(services: NamedDependency[Services], job_id: FromPath[int]) -> dict[str, Any]:
    with services.store.read() as conn:
        job = job_repo.get(conn, job_id)
    if job is None:
        raise NotFound(f"no job {job_id}", detail={"job_id": job_id})
    return job.to_dict()


@post(
    "/v1/jobs/{job_id:int}/cancel",
    summary="Cancel a queued or running job",
    tags=["jobs"],
    status_code=202,
    sync_to_thread=True,
)
def cancel_job(services: NamedDependency[Services], job_id: FromPath[int]) -> dict[str, Any]:
    return services.ingest.cancel_job(job_id).to_dict()


@get(
    "/v1/ingest",
    summary="Ingest queue state (paused, queued, running job)",
    tags=["jobs"],
    sync_to_thread=True,
)
def ingest_state(services: NamedDependency[Services]) -> dict[str, Any]:
    return services.ingest.queue_state()


@post(
    "/v1/ingest/pause",
    summary="Pause ingest (e.g. on battery); the running job finishes",
    tags=["jobs"],
    status_code=200,
    sync_to_thread=True,
)
def pause(services: NamedDependency[Services]) -> dict[str, Any]:
    services.ingest.worker.pause()
    return services.ingest.queue_state()


@post(
    "/v1/ingest/resume",
    summary="Resume ingest",
    tags=["jobs"],
    status_code=200,
    sync_to_thread=True,
)
def resume(services: NamedDependency[Services]) -> dict[str, Any]:
    services.ingest.worker.resume()
    return services.ingest.queue_state()


ROUTES = [list_jobs, get_job, cancel_job, ingest_state, pause, resume]

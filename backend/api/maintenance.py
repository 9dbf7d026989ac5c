"""Maintenance: ``POST /v1/doctor`` runs the integrity checks and repairs in the running sidecar."""

from __future__ import annotations

from litestar import post
from litestar.di import NamedDependency
from litestar.params import FromQuery

from backend.api.schemas import reply
from backend.api.schemas.errors import errors
from backend.api.schemas.maintenance import DoctorReport
from backend.services import Services


@post(
    "/v1/doctor",
    summary="Check the database and rebuild derived indexes (keyword index, vector indexes)",
    tags=["maintenance"],
    status_code=200,
    responses=errors(409, 422),
    sync_to_thread=True,
)
def doctor(
    services: NamedDependency[Services], check_only: FromQuery[bool] = False, quick: FromQuery[bool] = False
) -> DoctorReport:
    return reply(services.doctor.run(repair=not check_only, quick=quick), DoctorReport)


ROUTES = [doctor]

"""``create_app(settings, services)``: the Litestar application behind the security edge."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from litestar import Litestar
from litestar.di import Provide

from backend import __version__
from backend.api import documents, folders, jobs, maintenance, search, system
from backend.api import sync as sync_api
from backend.api.edge import Edge
from backend.api.errors import EXCEPTION_HANDLERS
from backend.api.openapi import openapi_config
from backend.api.options import options_handlers
from backend.security import allowed_hosts
from backend.services import Services
from backend.settings import Settings

OPENAPI_PATH = "/v1/openapi"


def create_app(settings: Settings, services: Services, *, port: int, token: str) -> Edge:
    """Build the ASGI app for a server bound to 127.0.0.1:``port`` requiring ``token``.

    The Litestar lifespan starts the services when the server starts and stops them when
    it stops, so tests driving the app through an ASGI client exercise the same path.
    """

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        await anyio.to_thread.run_sync(services.start)
        try:
            yield
        finally:
            services.events.close()
            await anyio.to_thread.run_sync(services.stop)

    def provide_services() -> Services:
        return services

    routes = [
        system.health,
        system.status,
        system.metrics,
        system.events,
        *documents.ROUTES,
        *jobs.ROUTES,
        *folders.ROUTES,
        *search.ROUTES,
        *sync_api.ROUTES,
        *maintenance.ROUTES,
    ]
    app = Litestar(
        route_handlers=[*options_handlers(routes), *routes],  # OPTIONS first: see backend/api/options.py
        dependencies={"services": Provide(provide_services, sync_to_thread=False)},
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=[lifespan],
        openapi_config=openapi_config("docsidecar", __version__, OPENAPI_PATH),
        request_max_body_size=settings.max_body_bytes,
        logging_config=None,
        debug=False,
    )
    app.state.port = port
    return Edge(
        app,
        token=token,
        hosts=allowed_hosts(port),
        origins=settings.cors_origins,
        metrics=services.metrics,
    )

"""Liveness, status, metrics and the event stream."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from litestar import Request, Response, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.response import ServerSentEvent, ServerSentEventMessage

from backend.api.schemas import reply
from backend.api.schemas.errors import errors
from backend.api.schemas.system import Health, SseEvent, Status
from backend.events import EventBus
from backend.metrics import CONTENT_TYPE
from backend.services import Services

HEARTBEAT_S = 15.0


@get("/v1/health", summary="Liveness (no token needed)", tags=["system"], sync_to_thread=False, security=[{}],
     responses=errors(403, edge=False))  # fmt: skip
def health() -> Health:
    return Health(status="ok")


@get(
    "/v1/status",
    summary="Version, data dir, schema, counts, component states",
    tags=["system"],
    sync_to_thread=True,
    responses=errors(),
)
def status(services: NamedDependency[Services], request: Request[Any, Any, Any]) -> Status:
    return reply(services.status(request.app.state.get("port")), Status)


@get("/v1/metrics", summary="Prometheus metrics (text format)", tags=["system"], sync_to_thread=True,
     responses={200: ResponseSpec(str, media_type="text/plain", description="Prometheus text exposition format",
                                  generate_examples=False), **errors()})  # fmt: skip
def metrics(services: NamedDependency[Services]) -> Response[bytes]:
    # in a worker thread: queue depths and sync counts are read from SQLite at scrape time
    return Response(content=services.metrics.render(), media_type=CONTENT_TYPE)


@get(
    "/v1/events",
    summary="Server-Sent Events: job progress, documents, errors, sync",
    tags=["system"],
    sync_to_thread=False,
    responses={200: ResponseSpec(SseEvent, media_type="text/event-stream", description="An endless event stream",
                                 generate_examples=False), **errors()},
)  # fmt: skip
def events(services: NamedDependency[Services], request: Request[Any, Any, Any]) -> ServerSentEvent:
    raw = request.headers.get("last-event-id", "")
    last_id = int(raw) if raw.isdigit() else services.events.last_id
    return ServerSentEvent(_stream(services.events, last_id))


async def _stream(bus: EventBus, last_id: int) -> AsyncIterator[ServerSentEventMessage]:
    sub = bus.subscribe()
    try:
        yield ServerSentEventMessage(event="hello", data=json.dumps({"last_event_id": last_id}), retry=2000)
        while not bus.closed:
            events, lagged = bus.since(last_id)
            if lagged:
                yield ServerSentEventMessage(event="resync", data="{}")
            for event in events:
                payload = {"ts": event.ts, **event.data}
                yield ServerSentEventMessage(id=str(event.id), event=event.type, data=json.dumps(payload))
                last_id = event.id
            if not events and lagged:
                last_id = bus.last_id
            if not await sub.wait(HEARTBEAT_S):
                yield ServerSentEventMessage(comment="keep-alive")
    finally:
        sub.close()

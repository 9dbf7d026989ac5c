"""Component lifecycle states, as shown in ``/v1/status``.

Every long-lived part of the sidecar (store, embedding model, ingest worker, watcher, sync)
has ``start()``/``stop()`` and a :class:`StatusCell` the status endpoint reads.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from backend.errors import SidecarError


class ComponentState(StrEnum):
    STARTING = "starting"
    READY = "ready"
    DEGRADED = "degraded"
    FAILED = "failed"
    STOPPED = "stopped"
    DISABLED = "disabled"


@dataclass(frozen=True, slots=True)
class ComponentStatus:
    state: ComponentState
    since: float
    error: dict[str, Any] | None = None
    detail: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": str(self.state),
            "since": self.since,
            "error": self.error,
            "detail": self.detail,
        }


class StatusCell:
    """A thread-safe holder of one component's current status."""

    def __init__(self, state: ComponentState = ComponentState.STARTING) -> None:
        self._lock = threading.Lock()
        self._status = ComponentStatus(state, time.time())

    def set(self, state: ComponentState, detail: dict[str, Any] | None = None) -> None:
        with self._lock:
            self._status = ComponentStatus(state, time.time(), None, detail)

    def fail(self, exc: BaseException, state: ComponentState = ComponentState.FAILED) -> None:
        if isinstance(exc, SidecarError):
            error = exc.to_body()
        else:
            error = {
                "error": "internal_error",
                "message": f"{type(exc).__name__}: {exc}",
                "detail": None,
            }
        with self._lock:
            self._status = ComponentStatus(state, time.time(), error)

    def get(self) -> ComponentStatus:
        with self._lock:
            return self._status


class Component(Protocol):
    """What the composition root starts, stops and reports."""

    name: str
    status: StatusCell

    def start(self) -> None: ...

    def stop(self) -> None: ...

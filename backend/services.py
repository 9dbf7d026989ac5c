"""Composition root: builds every component, starts and stops them in dependency order.

Constructing :class:`Services` has no side effects; :meth:`start` opens the store
synchronously (fast, and a broken data dir must fail the start) and launches heavy components
in the background so the HTTP port answers at once; :meth:`stop` stops them in reverse order
and joins their threads.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from backend import __version__
from backend.components import Component, ComponentState
from backend.events import EventBus
from backend.metrics import Metrics
from backend.settings import Settings
from backend.store import Store
from backend.store.counts import table_counts

log = logging.getLogger(__name__)


class Services:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.started_at = time.time()
        self.events = EventBus()
        self.metrics = Metrics()
        self.metrics.info.labels(__version__).set(1)
        self.store = Store(settings.data_dir)
        self._components: list[Component] = [self.store]
        self._started: list[Component] = []

    def start(self) -> None:
        """Start every component; on failure stop what was started and re-raise."""
        for component in self._components:
            try:
                component.start()
            except BaseException:
                log.exception("component %s failed to start", component.name)
                self.stop()
                raise
            self._started.append(component)
        log.info("services started", extra={"schema_version": self.store.schema_version})

    def stop(self) -> None:
        """Stop started components in reverse order. Idempotent."""
        self.events.close()
        while self._started:
            component = self._started.pop()
            try:
                component.stop()
            except Exception:
                log.exception("component %s failed to stop cleanly", component.name)

    def component_states(self) -> dict[str, dict[str, Any]]:
        return {c.name: c.status.get().to_dict() for c in self._components}

    def status(self, port: int | None) -> dict[str, Any]:
        counts: dict[str, Any] | None = None
        if self.store.status.get().state is ComponentState.READY:
            with self.store.read() as conn:
                counts = table_counts(conn)
        return {
            "version": __version__,
            "pid": os.getpid(),
            "port": port,
            "data_dir": str(self.settings.data_dir),
            "uptime_s": round(time.time() - self.started_at, 3),
            "schema_version": self.store.schema_version,
            "counts": counts,
            "components": self.component_states(),
        }

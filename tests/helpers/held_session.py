"""Hold chosen model runs of a real onnxruntime session, to order events without sleeping.

``HeldSession`` wraps the embedder's real ``InferenceSession``: a run for which ``hold_when()``
is true (e.g. "called from the ingest worker thread") signals ``entered`` and then waits inside
``run`` until :meth:`release` — so a test can issue a query while a bulk batch is provably
inside the model. Every run still executes on the real session; nothing is faked.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

LIVENESS_S = 60.0
"""A held run gives up waiting after this long (only reached when a test forgot to release)."""


class HeldSession:
    def __init__(self, inner: Any, hold_when: Callable[[], bool]) -> None:
        self.inner = inner
        self.hold_when = hold_when
        self.entered = threading.Event()
        self._released = threading.Event()
        self._lock = threading.Lock()
        self.inside = 0

    def release(self) -> None:
        self._released.set()

    def run(self, output_names: Any, feeds: Any, run_options: Any = None) -> Any:
        if not self._released.is_set() and self.hold_when():
            with self._lock:
                self.inside += 1
            self.entered.set()
            try:
                self._released.wait(LIVENESS_S)
            finally:
                with self._lock:
                    self.inside -= 1
        return self.inner.run(output_names, feeds, run_options)

    def __getattr__(self, name: str) -> Any:  # get_inputs(), get_session_options(), ...
        return getattr(self.inner, name)

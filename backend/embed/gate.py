"""A turn gate that serialises model runs and lets urgent callers (queries) go next.

Bulk embedding takes one turn per batch; a query waiting at the gate takes the very next turn,
so a search never waits for a whole ingest, only for the batch in flight. Runs are serialised
because one onnxruntime run already uses every intra-op thread; running two at once only
oversubscribes the cores. Bulk callers cannot starve each other but can be delayed while
queries keep arriving (queries are human-paced).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class TurnGate:
    """``with gate.turn(urgent=...)``: exclusive turn; urgent waiters are served first."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._busy = False
        self._urgent_waiting = 0

    @contextmanager
    def turn(self, *, urgent: bool) -> Iterator[None]:
        with self._cond:
            if urgent:
                self._urgent_waiting += 1
            try:
                while self._busy or (not urgent and self._urgent_waiting > 0):
                    self._cond.wait()
            finally:
                if urgent:
                    self._urgent_waiting -= 1
            self._busy = True
        try:
            yield
        finally:
            with self._cond:
                self._busy = False
                self._cond.notify_all()

    @property
    def urgent_waiting(self) -> int:
        """How many urgent callers are waiting for a turn now (diagnostics and tests)."""
        with self._cond:
            return self._urgent_waiting

    @property
    def busy(self) -> bool:
        with self._cond:
            return self._busy

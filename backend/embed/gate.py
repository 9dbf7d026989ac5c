"""A turn gate for model runs: queries never wait for bulk embedding.

Two lanes share one onnxruntime session (``InferenceSession.run`` is thread-safe):

* **urgent** (queries): one at a time among themselves, and never behind a bulk batch — an
  urgent turn starts at once even while a bulk batch is running; the two runs share the cores.
* **bulk** (ingest, backfill, re-embedding): one batch at a time, and a bulk batch never
  *starts* while a query is waiting or running, so during a stream of queries bulk work only
  proceeds in the gaps between them.

Why a query runs beside a bulk batch instead of waiting for it: a bulk batch of the default
1024-token budget takes ~0.2 s on two idle cores (0.6 s on a busy one), so a query behind it
waited half a batch on average — measured with ``tests/bench/bench_load.py``: query embedding
p50 11 → 315 ms under ingest on the 2-core build VM. Running beside the batch costs the query
~1.5× its idle time (the cores are shared) and costs bulk nothing but the query's own CPU;
pre-empting the batch (onnxruntime's ``RunOptions.terminate``) would waste the batch's work.
Bulk callers cannot starve each other but can be delayed while queries keep arriving (queries
are human-paced).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class TurnGate:
    """``with gate.turn(urgent=...)``: see the module docstring for the rules."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._bulk_busy = False
        self._urgent_busy = False
        self._urgent_waiting = 0
        self._bulk_waiting = 0

    @contextmanager
    def turn(self, *, urgent: bool) -> Iterator[None]:
        with self._cond:
            if urgent:
                self._urgent_waiting += 1
                try:
                    while self._urgent_busy:
                        self._cond.wait()
                finally:
                    self._urgent_waiting -= 1
                self._urgent_busy = True
            else:
                self._bulk_waiting += 1
                try:
                    while self._bulk_busy or self._urgent_busy or self._urgent_waiting > 0:
                        self._cond.wait()
                finally:
                    self._bulk_waiting -= 1
                self._bulk_busy = True
        try:
            yield
        finally:
            with self._cond:
                if urgent:
                    self._urgent_busy = False
                else:
                    self._bulk_busy = False
                self._cond.notify_all()

    @property
    def urgent_waiting(self) -> int:
        """How many urgent callers are waiting for a turn now (diagnostics and tests)."""
        with self._cond:
            return self._urgent_waiting

    @property
    def bulk_waiting(self) -> int:
        """How many bulk callers are waiting for a turn now (diagnostics and tests)."""
        with self._cond:
            return self._bulk_waiting

    @property
    def busy(self) -> bool:
        """Whether any turn (urgent or bulk) is in progress."""
        with self._cond:
            return self._bulk_busy or self._urgent_busy

    @property
    def bulk_busy(self) -> bool:
        with self._cond:
            return self._bulk_busy

    @property
    def urgent_busy(self) -> bool:
        with self._cond:
            return self._urgent_busy

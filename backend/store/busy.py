"""Busy handling that can be measured: SQLite's own busy-timeout schedule, with every lock wait
reported.

When another connection (another process: the ``sqlite3`` shell, a backup tool, a second
sidecar on the same file by mistake) holds the write lock, or a checkpoint/recovery blocks a
reader, SQLite calls the connection's busy handler instead of failing with ``SQLITE_BUSY``.
:class:`BusyWaits` is that handler: it sleeps with the delays of SQLite's built-in busy timeout
(1, 2, 5, 10 … 100 ms, up to ``timeout_s`` in total), then gives up, and tells a
:class:`BusyObserver` about each *wait*: ``began`` at the first ``SQLITE_BUSY`` of a lock
attempt, ``retried`` after each sleep, ``ended`` once with how long it lasted and how it ended
(``acquired`` or ``timeout``).

SQLite does not tell the handler that a retry succeeded; the wait is known to have ended with
the lock the next time the connection is used (the next wait begins, or the owner calls
:meth:`BusyWaits.settle` after the statement that waited — the writer does after ``BEGIN
IMMEDIATE``). Its duration runs from the first ``SQLITE_BUSY`` to the retry that got the lock.

One instance per connection, called only by the thread using the connection.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

DEFAULT_TIMEOUT_S = 5.0
_DELAYS_S = (0.001, 0.002, 0.005, 0.010, 0.015, 0.020, 0.025, 0.025, 0.025, 0.050, 0.050, 0.100)
"""sqlite3.c ``sqliteDefaultBusyCallback``: the same schedule as ``sqlite3_busy_timeout``."""
_MIN_SLEEP_S = 0.0005
"""Less than this left of the timeout counts as the timeout (SQLite counts whole milliseconds)."""


class BusyObserver(Protocol):
    """Told about lock waits of one kind of connection (``role``: ``writer`` or ``reader``)."""

    def busy_began(self, role: str) -> None: ...

    def busy_retried(self, role: str) -> None: ...

    def busy_ended(self, role: str, outcome: str, seconds: float) -> None: ...


class BusyWaits:
    """``conn.set_busy_handler(BusyWaits(...))``; see the module docstring."""

    def __init__(
        self,
        role: str,
        observer: BusyObserver | None,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.role = role
        self.observer = observer
        self.timeout_s = timeout_s
        self._clock = clock
        self._sleep = sleep
        self._began: float | None = None
        self._last_try = 0.0

    def __call__(self, prior_calls: int) -> bool:
        now = self._clock()
        if prior_calls == 0 or self._began is None:
            self.settle()  # an earlier wait of this connection ended with the lock
            self._began = self._last_try = now
            if self.observer is not None:
                self.observer.busy_began(self.role)
        waited = now - self._began
        left = self.timeout_s - waited
        if left < _MIN_SLEEP_S:
            self._end("timeout", waited)
            return False
        delay = _DELAYS_S[min(prior_calls, len(_DELAYS_S) - 1)]
        self._sleep(min(delay, left))
        self._last_try = self._clock()
        if self.observer is not None:
            self.observer.busy_retried(self.role)
        return True

    def settle(self) -> None:
        """The statement that waited has run: report the wait as ended with the lock."""
        if self._began is not None:
            self._end("acquired", self._last_try - self._began)

    def _end(self, outcome: str, seconds: float) -> None:
        self._began = None
        if self.observer is not None:
            self.observer.busy_ended(self.role, outcome, max(0.0, seconds))

"""The clock seam: wall-clock and monotonic time as one injectable object.

Durable schedules (``jobs.not_before``, retry backoff, the sync clock's wall-clock part) must
use the wall clock, the only clock that means something across restarts; timeouts inside one
process use the monotonic clock. Code that schedules takes a :class:`Clock` (default
:data:`SYSTEM_CLOCK`) so tests can make the wall clock jump — an NTP correction, the user
changing the time, a laptop resumed from sleep — without touching the system clock.
"""

from __future__ import annotations

import threading
import time
from typing import Final, Protocol


class Clock(Protocol):
    def time(self) -> float:
        """Wall-clock time, unix seconds (may jump either way)."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin, never going backwards (this process only)."""
        ...


class SystemClock:
    """The operating system's clocks."""

    __slots__ = ()

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


SYSTEM_CLOCK: Final[Clock] = SystemClock()


class ShiftedClock:
    """The system clock moved by an offset that :meth:`jump` changes: a wall-clock jump as a
    running process sees it. The monotonic clock does not jump (as with a real one)."""

    def __init__(self, offset_s: float = 0.0) -> None:
        self._lock = threading.Lock()
        self._offset = offset_s

    def jump(self, seconds: float) -> None:
        """Move the wall clock forward (positive) or backward (negative) by ``seconds``."""
        with self._lock:
            self._offset += seconds

    @property
    def offset(self) -> float:
        with self._lock:
            return self._offset

    def time(self) -> float:
        return time.time() + self.offset

    def monotonic(self) -> float:
        return time.monotonic()

"""Circuit breaker for the HTTP embedding provider: a pure state machine plus a locked holder.

States::

    closed ──(threshold consecutive failures)──▶ open ──(cool-down elapsed, next request)──▶
    half_open (one probe in flight) ──success──▶ closed
                                    ──failure──▶ open (cool-down restarts)

While open, requests are refused without calling the provider; in half-open exactly one probe
is let through and every other request is refused until it reports. The transition functions
are pure (state and time in, state out); :class:`CircuitBreaker` holds the state under a lock
and reads an injectable monotonic clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

BreakerStateName = Literal["closed", "open", "half_open"]


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    failure_threshold: int = 5
    """Consecutive failed calls that open the circuit."""
    cooldown_s: float = 30.0
    """Seconds the circuit stays open before one probe is allowed."""

    def __post_init__(self) -> None:
        if self.failure_threshold < 1 or self.cooldown_s < 0:
            raise ValueError("failure_threshold must be >= 1 and cooldown_s >= 0")


@dataclass(frozen=True, slots=True)
class BreakerState:
    name: BreakerStateName = "closed"
    failures: int = 0
    opened_at: float = 0.0
    probe_in_flight: bool = False


def on_request(s: BreakerState, now: float, p: BreakerPolicy) -> tuple[BreakerState, bool]:
    """May a request go out now? Returns the new state and the decision."""
    if s.name == "closed":
        return s, True
    if s.name == "open":
        if now - s.opened_at >= p.cooldown_s:
            return replace(s, name="half_open", probe_in_flight=True), True
        return s, False
    if s.probe_in_flight:
        return s, False
    return replace(s, probe_in_flight=True), True


def on_success(s: BreakerState) -> BreakerState:
    """A request that was let through succeeded (the provider answered)."""
    return BreakerState()


def on_failure(s: BreakerState, now: float, p: BreakerPolicy) -> BreakerState:
    """A request that was let through failed (provider unavailable)."""
    if s.name == "half_open":
        return BreakerState("open", s.failures + 1, now, False)
    failures = s.failures + 1
    if s.name == "closed" and failures >= p.failure_threshold:
        return BreakerState("open", failures, now, False)
    return replace(s, failures=failures)


def on_abandon(s: BreakerState) -> BreakerState:
    """A request that was let through ended without telling anything about the provider
    (e.g. the client was stopped): free the half-open probe slot, change nothing else."""
    return replace(s, probe_in_flight=False) if s.name == "half_open" else s


def retry_after(s: BreakerState, now: float, p: BreakerPolicy) -> float:
    """Seconds until an open circuit lets a probe through (0 when not open)."""
    if s.name != "open":
        return 0.0
    return min(p.cooldown_s, max(0.0, p.cooldown_s - (now - s.opened_at)))


class CircuitBreaker:
    """Thread-safe holder of a :class:`BreakerState`."""

    def __init__(self, policy: BreakerPolicy | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy or BreakerPolicy()
        self._clock = clock
        self._lock = threading.Lock()
        self._state = BreakerState()

    @property
    def state(self) -> BreakerState:
        with self._lock:
            return self._state

    def allow(self) -> bool:
        with self._lock:
            self._state, ok = on_request(self._state, self._clock(), self.policy)
            return ok

    def record_success(self) -> None:
        with self._lock:
            self._state = on_success(self._state)

    def record_failure(self) -> None:
        with self._lock:
            self._state = on_failure(self._state, self._clock(), self.policy)

    def record_abandon(self) -> None:
        with self._lock:
            self._state = on_abandon(self._state)

    def retry_after(self) -> float:
        with self._lock:
            return retry_after(self._state, self._clock(), self.policy)

"""Deterministic fault injection for the gateway.

A ``FaultPlan`` gives per-request probabilities for each fault; ``FaultInjector`` draws from a
``random.Random(seed)`` under a lock, so the same seed and the same request order give the same
faults. ``script`` queues faults for the next matching requests, ahead of the random draws, for
tests that need one exact fault at one exact place.

Faults:
  latency        sleep before handling (``latency_s`` plus up to ``jitter_s``)
  server_error   a 5xx with the service's error body; nothing is applied
  rate_limit     429 with ``Retry-After``; nothing is applied
  drop           close the connection without a response; nothing is applied
  lost_response  apply the request (commit), then close the connection without a response
"""

from __future__ import annotations

import random
import threading
from collections import deque
from dataclasses import dataclass, field
from enum import Enum


class Fault(Enum):
    NONE = "none"
    SERVER_ERROR = "server_error"
    RATE_LIMIT = "rate_limit"
    DROP = "drop"
    LOST_RESPONSE = "lost_response"


@dataclass(frozen=True)
class FaultPlan:
    """Probabilities (0..1, summing to at most 1) and parameters of injected faults."""

    seed: int = 0
    server_error: float = 0.0
    rate_limit: float = 0.0
    drop: float = 0.0
    lost_response: float = 0.0
    latency_s: float = 0.0
    jitter_s: float = 0.0
    server_error_statuses: tuple[int, ...] = (500, 502, 503, 504)
    retry_after_s: int = 1
    # Only requests whose path starts with one of these prefixes are faulted ("" = all).
    path_prefixes: tuple[str, ...] = ("",)

    def __post_init__(self) -> None:
        rates = (self.server_error, self.rate_limit, self.drop, self.lost_response)
        if any(r < 0 for r in rates) or sum(rates) > 1.0 + 1e-9:
            raise ValueError("fault probabilities must be >= 0 and sum to at most 1")
        if self.latency_s < 0 or self.jitter_s < 0:
            raise ValueError("latency must be >= 0")

    @property
    def fault_rate(self) -> float:
        return self.server_error + self.rate_limit + self.drop + self.lost_response


@dataclass(frozen=True)
class Decision:
    fault: Fault
    delay_s: float = 0.0
    status: int = 0
    retry_after_s: int = 0


@dataclass
class ScriptedFault:
    fault: Fault
    path_prefix: str = ""
    method: str | None = None
    status: int = 503


@dataclass
class FaultInjector:
    """Decides, per request, which fault (if any) to inject. Thread-safe."""

    plan: FaultPlan = field(default_factory=FaultPlan)
    _rng: random.Random = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _script: deque[ScriptedFault] = field(default_factory=deque, init=False)
    counts: dict[Fault, int] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.plan.seed)

    def set_plan(self, plan: FaultPlan) -> None:
        with self._lock:
            self.plan = plan
            self._rng = random.Random(plan.seed)

    def reset(self) -> None:
        """No faults, no scripted faults, counters cleared."""
        with self._lock:
            self.plan = FaultPlan()
            self._rng = random.Random(0)
            self._script.clear()
            self.counts.clear()

    def script(self, fault: Fault, path_prefix: str = "", method: str | None = None, status: int = 503) -> None:
        """Inject ``fault`` into the next request matching ``path_prefix`` (and ``method``)."""
        with self._lock:
            self._script.append(ScriptedFault(fault, path_prefix, method, status))

    def decide(self, method: str, path: str) -> Decision:
        with self._lock:
            decision = self._scripted(method, path) or self._draw(path)
            self.counts[decision.fault] = self.counts.get(decision.fault, 0) + 1
            return decision

    def _scripted(self, method: str, path: str) -> Decision | None:
        for item in self._script:
            if path.startswith(item.path_prefix) and item.method in (None, method):
                self._script.remove(item)
                return Decision(item.fault, status=item.status, retry_after_s=self.plan.retry_after_s)
        return None

    def _draw(self, path: str) -> Decision:
        plan = self.plan
        if not any(path.startswith(p) for p in plan.path_prefixes):
            return Decision(Fault.NONE)
        delay = plan.latency_s + (self._rng.random() * plan.jitter_s if plan.jitter_s else 0.0)
        if plan.fault_rate == 0.0:
            return Decision(Fault.NONE, delay)
        roll = self._rng.random()
        for fault, rate in (
            (Fault.SERVER_ERROR, plan.server_error),
            (Fault.RATE_LIMIT, plan.rate_limit),
            (Fault.DROP, plan.drop),
            (Fault.LOST_RESPONSE, plan.lost_response),
        ):
            if roll < rate:
                status = self._rng.choice(plan.server_error_statuses)
                return Decision(fault, delay, status, plan.retry_after_s)
            roll -= rate
        return Decision(Fault.NONE, delay)

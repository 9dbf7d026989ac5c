"""The circuit breaker state machine: scenarios plus a hypothesis state machine of invariants."""

from __future__ import annotations

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from backend.embed.circuit import (
    BreakerPolicy,
    BreakerState,
    CircuitBreaker,
    on_failure,
    on_request,
    on_success,
    retry_after,
)

P = BreakerPolicy(failure_threshold=3, cooldown_s=10.0)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_threshold_consecutive_failures_only() -> None:
    clock = Clock()
    b = CircuitBreaker(P, clock)
    for _ in range(2):
        assert b.allow()
        b.record_failure()
    assert b.allow()
    b.record_success()  # resets the count
    for _ in range(2):
        assert b.allow()
        b.record_failure()
    assert b.state.name == "closed"
    assert b.allow()
    b.record_failure()
    assert b.state.name == "open"
    assert not b.allow()
    assert b.retry_after() == 10.0


def test_half_open_lets_one_probe_through() -> None:
    clock = Clock()
    b = CircuitBreaker(P, clock)
    for _ in range(3):
        b.allow()
        b.record_failure()
    clock.now += 9.999
    assert not b.allow()
    clock.now += 0.001
    assert b.allow()  # the probe
    assert b.state.name == "half_open"
    assert not b.allow() and not b.allow()  # everyone else waits for the probe
    b.record_success()
    assert b.state == BreakerState() and b.allow()


def test_failed_probe_reopens_with_a_fresh_cooldown() -> None:
    clock = Clock()
    b = CircuitBreaker(P, clock)
    for _ in range(3):
        b.allow()
        b.record_failure()
    clock.now += 10
    assert b.allow()
    b.record_failure()
    assert b.state.name == "open" and b.state.opened_at == clock.now
    clock.now += 5
    assert not b.allow() and b.retry_after() == 5.0


def test_abandoned_probe_frees_the_slot() -> None:
    clock = Clock()
    b = CircuitBreaker(P, clock)
    for _ in range(3):
        b.allow()
        b.record_failure()
    clock.now += 10
    assert b.allow()
    b.record_abandon()
    assert b.state.name == "half_open" and b.allow()


def test_policy_validation() -> None:
    with pytest.raises(ValueError):
        BreakerPolicy(failure_threshold=0)
    with pytest.raises(ValueError):
        BreakerPolicy(cooldown_s=-1)


class BreakerMachine(RuleBasedStateMachine):
    """Random interleavings of requests, outcomes and time; invariants must always hold."""

    def __init__(self) -> None:
        super().__init__()
        self.state = BreakerState()
        self.now = 0.0
        self.in_flight = 0  # requests let through that have not reported
        self.consecutive_failures = 0

    @rule()
    def request(self) -> None:
        before = self.state
        self.state, ok = on_request(self.state, self.now, P)
        if before.name == "open" and self.now - before.opened_at < P.cooldown_s:
            assert not ok  # never call the provider during the cool-down
        if before.name == "half_open" and before.probe_in_flight:
            assert not ok
        if before.name == "closed":
            assert ok
        self.in_flight += ok

    @precondition(lambda self: self.in_flight > 0)
    @rule()
    def succeed(self) -> None:
        self.in_flight -= 1
        self.consecutive_failures = 0
        self.state = on_success(self.state)
        assert self.state.name == "closed"

    @precondition(lambda self: self.in_flight > 0)
    @rule()
    def fail(self) -> None:
        self.in_flight -= 1
        self.consecutive_failures += 1
        before = self.state
        self.state = on_failure(self.state, self.now, P)
        if before.name == "half_open" or self.consecutive_failures >= P.failure_threshold:
            assert self.state.name == "open"

    @rule(dt=st.floats(0, 25, allow_nan=False))
    def tick(self, dt: float) -> None:
        self.now += dt

    @invariant()
    def consistent(self) -> None:
        s = self.state
        if s.name == "closed":
            assert s.failures < P.failure_threshold and not s.probe_in_flight
        assert not (s.probe_in_flight and s.name != "half_open")
        assert 0 <= retry_after(s, self.now, P) <= P.cooldown_s


TestBreakerMachine = BreakerMachine.TestCase

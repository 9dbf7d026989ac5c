"""Network-change detection from the local interface table (psutil; no packets are sent).

:func:`fingerprint` summarises the non-loopback interfaces that are up and their addresses;
when it changes (Wi-Fi joined, cable plugged, VPN up, laptop woke up elsewhere) the sync
service runs at once instead of waiting for its timer or for the circuit breaker's cool-down.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import psutil

Fingerprint = frozenset[tuple[str, str]]


def fingerprint() -> Fingerprint:
    stats = psutil.net_if_stats()
    out: set[tuple[str, str]] = set()
    for name, addrs in psutil.net_if_addrs().items():
        st = stats.get(name)
        if st is None or not st.isup:
            continue
        for a in addrs:
            if a.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(a.address):
                out.add((name, a.address))
    return frozenset(out)


def _is_loopback(address: str) -> bool:
    return address.startswith(("127.", "fe80::1%lo")) or address == "::1"


def network_up(fp: Fingerprint) -> bool:
    return bool(fp)


class ConnectivityWatch:
    """``poll()`` at most every ``interval_s``; True when the fingerprint changed since the
    previous poll (the first poll only records it)."""

    def __init__(
        self,
        interval_s: float,
        probe: Callable[[], Fingerprint] = fingerprint,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval_s = interval_s
        self._probe = probe
        self._clock = clock
        self._last: Fingerprint | None = None
        self._checked = float("-inf")

    @property
    def last(self) -> Fingerprint | None:
        return self._last

    def poll(self) -> bool:
        now = self._clock()
        if now - self._checked < self.interval_s:
            return False
        self._checked = now
        try:
            current = self._probe()
        except (OSError, RuntimeError):
            return False
        changed = self._last is not None and current != self._last
        self._last = current
        return changed

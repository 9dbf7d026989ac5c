"""Coalescing file-system events (pure).

Editors save in bursts (write temp, rename over, touch, chmod), and cloud clients touch files
repeatedly. The watcher records every event as "this path is dirty" with a timestamp; a batch
is released once the folder has been quiet for ``quiet_s`` (or ``max_wait_s`` after the first
event, so a constantly busy folder still makes progress). What happened in between does not
matter: the reconcile step looks at the file system and the index as they are now.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Pending:
    """Dirty paths of one folder since the last release."""

    files: set[str] = field(default_factory=set)
    dirs: set[str] = field(default_factory=set)
    first_at: float | None = None
    last_at: float | None = None

    def add(self, path: str, *, is_dir: bool, at: float) -> None:
        (self.dirs if is_dir else self.files).add(path)
        self.first_at = at if self.first_at is None else self.first_at
        self.last_at = at

    def ready(self, now: float, quiet_s: float, max_wait_s: float) -> bool:
        if self.first_at is None or self.last_at is None:
            return False
        return now - self.last_at >= quiet_s or now - self.first_at >= max_wait_s

    def due_in(self, now: float, quiet_s: float, max_wait_s: float) -> float | None:
        if self.first_at is None or self.last_at is None:
            return None
        return max(0.0, min(self.last_at + quiet_s, self.first_at + max_wait_s) - now)

    def take(self) -> tuple[set[str], set[str]]:
        files, dirs = self.files, self.dirs
        self.files, self.dirs, self.first_at, self.last_at = set(), set(), None, None
        return files, collapse_dirs(dirs)

    def __bool__(self) -> bool:
        return bool(self.files or self.dirs)


def collapse_dirs(dirs: set[str]) -> set[str]:
    """Drop directories contained in another listed directory."""
    out: set[str] = set()
    for d in sorted(dirs, key=len):
        if not any(d == p or d.startswith(p.rstrip("/\\") + _sep(p)) for p in out):
            out.add(d)
    return out


def _sep(path: str) -> str:
    return "\\" if "\\" in path and "/" not in path else "/"

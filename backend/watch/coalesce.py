"""Coalescing file-system events (pure).

Editors save in bursts (write temp, rename over, touch, chmod), and cloud clients touch files
repeatedly. The watcher records every event as "this path is dirty" with a timestamp; a batch
is released once the folder has been quiet for ``quiet_s`` (or ``max_wait_s`` after the first
event, so a constantly busy folder still makes progress). What happened in between does not
matter: the reconcile step looks at the file system and the index as they are now.

Memory is bounded: past ``max_paths`` dirty paths (a burst such as unpacking an archive of
100k files), the set is dropped and the batch becomes "rescan the whole folder" (``overflowed``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_PATHS = 10_000


@dataclass
class Pending:
    """Dirty paths of one folder since the last release."""

    files: set[str] = field(default_factory=set)
    dirs: set[str] = field(default_factory=set)
    first_at: float | None = None
    last_at: float | None = None
    overflowed: bool = False
    """More than ``max_paths`` dirty paths arrived: the folder needs a full reconcile."""
    max_paths: int = MAX_PATHS

    def add(self, path: str, *, is_dir: bool, at: float) -> None:
        if not self.overflowed:
            (self.dirs if is_dir else self.files).add(path)
            if len(self.files) + len(self.dirs) > self.max_paths:
                self.files, self.dirs, self.overflowed = set(), set(), True
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
        self.overflowed = False
        return files, collapse_dirs(dirs)

    def __bool__(self) -> bool:
        return bool(self.files or self.dirs or self.overflowed)


def collapse_dirs(dirs: set[str]) -> set[str]:
    """Drop directories contained in another listed directory."""
    out: set[str] = set()
    for d in sorted(dirs, key=len):
        if not any(d == p or d.startswith(p.rstrip("/\\") + _sep(p)) for p in out):
            out.add(d)
    return out


def _sep(path: str) -> str:
    return "\\" if "\\" in path and "/" not in path else "/"

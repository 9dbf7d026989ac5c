"""How many directories the sidecar may watch natively, per OS.

* Linux (inotify): one watch per directory, limited per user by
  ``/proc/sys/fs/inotify/max_user_watches`` (8192 on older kernels, up to ~1M on newer ones
  with enough RAM) and shared with every other program of the user (IDEs, Dropbox, …). The
  sidecar claims at most half of it by default, so it never starves the rest of the desktop.
* macOS (FSEvents) and Windows (ReadDirectoryChangesW) watch a whole tree with one handle:
  no per-directory budget (untested here).

A folder whose directory count would exceed the remaining budget is not watched natively
but scanned periodically (``watch_poll_interval_s``); ``GET /v1/folders`` reports
``mode: "polling"`` with the reason.
"""

from __future__ import annotations

import sys
from pathlib import Path

INOTIFY_MAX_WATCHES = Path("/proc/sys/fs/inotify/max_user_watches")
UNLIMITED = 1 << 62
LINUX_FALLBACK = 8192


def needs_per_directory_watches(platform: str = sys.platform) -> bool:
    return platform.startswith("linux")


def default_watch_budget(platform: str = sys.platform, limit_file: Path = INOTIFY_MAX_WATCHES) -> int:
    """Directories the sidecar may watch natively when the setting says "auto" (0)."""
    if not needs_per_directory_watches(platform):
        return UNLIMITED
    try:
        limit = int(limit_file.read_text().strip())
    except (OSError, ValueError):
        limit = LINUX_FALLBACK
    return max(1, limit // 2)

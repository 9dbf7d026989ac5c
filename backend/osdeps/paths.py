"""Per-OS locations and private files/directories."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Mapping
from pathlib import Path


def default_data_dir(env: Mapping[str, str], platform: str) -> Path:
    """The OS convention for per-user application data.

    Linux/BSD: ``$XDG_DATA_HOME/docsidecar`` (default ``~/.local/share/docsidecar``);
    macOS: ``~/Library/Application Support/docsidecar``;
    Windows: ``%LOCALAPPDATA%\\docsidecar`` (untested here).
    """
    home = Path(env.get("HOME") or env.get("USERPROFILE") or Path.home())
    if platform == "darwin":
        return home / "Library" / "Application Support" / "docsidecar"
    if platform.startswith("win"):
        local = env.get("LOCALAPPDATA")
        return Path(local) / "docsidecar" if local else home / "AppData" / "Local" / "docsidecar"
    xdg = env.get("XDG_DATA_HOME")
    return (Path(xdg) if xdg else home / ".local" / "share") / "docsidecar"


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) and restrict it to the current user (0700 on POSIX).

    On Windows the per-user profile directory already carries a user-only ACL; ``chmod`` only
    toggles the read-only bit there, so nothing more is done (untested here).
    """
    path.mkdir(parents=True, exist_ok=True)
    if os.name == "posix":
        path.chmod(0o700)
    return path


def write_private_file(path: Path, data: bytes) -> None:
    """Atomically write ``data`` to ``path`` readable only by the owner (0600 on POSIX).

    The file is created with the restrictive mode from the start (no window where it is
    world-readable), fsynced, then renamed over the destination.
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    fd = os.open(tmp, flags, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (POSIX; a no-op on Windows where it is not possible)."""
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# Virtual file systems whose "files" are live process/kernel state (``/proc/self/environ``
# holds the sidecar's token): never indexed, whatever their stat says. POSIX only; Windows
# device paths (``\\.\``) are not regular files and are refused by the caller's stat check.
_SYSTEM_ROOTS = (Path("/proc"), Path("/sys"), Path("/dev"))


def is_system_path(resolved: Path) -> bool:
    """Whether an already-resolved path lies in /proc, /sys or /dev."""
    if os.name != "posix":
        return False
    return any(resolved == root or root in resolved.parents for root in _SYSTEM_ROOTS)


def is_filesystem_root(resolved: Path) -> bool:
    """Whether an already-resolved path is the root of a file system namespace (``/``, ``C:\\``,
    a UNC share's root): its parent is itself."""
    return resolved.parent == resolved

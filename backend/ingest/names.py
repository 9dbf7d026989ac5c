"""File-name sanitisation for stored copies, and path confinement for paths from requests.

Both are pure string/path logic (``confine_path`` resolves symlinks, so it touches the file
system read-only). Windows rules are applied on every OS so a name stored on Linux stays valid
when the data directory moves to Windows; only Linux runs the tests here.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from backend.errors import Forbidden

_MAX_NAME_BYTES = 200
_FORBIDDEN_CHARS = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]')
_WINDOWS_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"COM{i}" for i in range(10)}
    | {f"LPT{i}" for i in range(10)}
    | {"COM¹", "COM²", "COM³", "LPT¹", "LPT²", "LPT³"}
)


class PathOutsideRoot(Forbidden):
    """A path from a request resolves outside the directory it must stay in."""

    code = "path_outside_root"


def safe_filename(name: str, *, default: str = "file") -> str:
    """Return a name that is safe to use as a single path component on Windows, macOS and Linux.

    Directory parts (``/`` and ``\\``) are dropped, so ``../../etc/passwd`` becomes ``passwd``;
    control and reserved characters become ``_``; leading dots/spaces and trailing dots/spaces
    are stripped (no hidden files, no ``..``); Windows device names get a ``_`` prefix; the
    result is NFC-normalised and at most 200 UTF-8 bytes, keeping the extension when possible.
    An empty result becomes ``default``.
    """
    base = re.split(r"[/\\]", unicodedata.normalize("NFC", name))[-1]
    base = _FORBIDDEN_CHARS.sub("_", base)
    base = base.strip(" .")
    if not base or set(base) <= {"_"}:
        base = default
    stem, dot, ext = base.rpartition(".")
    if not dot:
        stem, ext = base, ""
    if stem.split(".")[0].upper().rstrip(" ") in _WINDOWS_RESERVED:
        base = "_" + base
    return _truncate_utf8(base, ext)


def _truncate_utf8(base: str, ext: str) -> str:
    if len(base.encode("utf-8")) <= _MAX_NAME_BYTES:
        return base
    suffix = f".{ext}" if ext and len(ext.encode("utf-8")) <= 16 else ""
    stem = base[: len(base) - len(suffix)] if suffix else base
    budget = _MAX_NAME_BYTES - len(suffix.encode("utf-8"))
    cut = stem.encode("utf-8")[:budget].decode("utf-8", errors="ignore").rstrip(" .")
    return (cut or "file") + suffix


def confine_path(root: Path, candidate: str | Path) -> Path:
    """Resolve ``candidate`` (absolute, or relative to ``root``) and return it if it lies inside
    ``root`` after resolving symlinks and ``..``; raise :class:`PathOutsideRoot` otherwise."""
    root_resolved = root.resolve()
    path = Path(candidate)
    resolved = (path if path.is_absolute() else root_resolved / path).resolve()
    if resolved != root_resolved and root_resolved not in resolved.parents:
        raise PathOutsideRoot(
            "path is outside the allowed directory",
            detail={"path": str(candidate), "root": str(root)},
        )
    return resolved

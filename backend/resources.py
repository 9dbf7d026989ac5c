"""Where bundled, read-only resources live, in a source checkout and in the desktop bundle.

PyInstaller one-folder and one-file builds unpack data next to the executable and expose the
directory as ``sys._MEIPASS``; a source checkout has them at the repository root. Nothing is
ever written below :func:`resource_root` (install locations are read-only); all state goes to
the data dir.
"""

from __future__ import annotations

import sys
from pathlib import Path


def is_frozen() -> bool:
    return bool(getattr(sys, "frozen", False)) and hasattr(sys, "_MEIPASS")


def resource_root() -> Path:
    if is_frozen():
        return Path(sys._MEIPASS)  # type: ignore[attr-defined]
    return Path(__file__).resolve().parent.parent


def default_models_dir() -> Path:
    return resource_root() / "models"

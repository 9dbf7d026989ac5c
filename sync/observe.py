"""What the sync service reports about its runs, without knowing who listens (metrics).

``on_run(outcome, error_class, seconds)`` is called once per run asked for (API or the
background worker): ``outcome`` is ``ok``, ``failed``, ``cancelled`` (shutdown), or
``not_configured`` / ``signed_out`` for a run refused before it started (``seconds`` None);
``error_class`` names why a run failed (:func:`error_class`), else None.
"""

from __future__ import annotations

from collections.abc import Callable

from backend.errors import SidecarError
from sync.errors import SupabaseError, SyncSignedOut
from sync.sharing import SCHEMA_MISSING

RunObserver = Callable[[str, str | None, float | None], object]


def error_class(exc: BaseException) -> str:
    """A small, fixed vocabulary: the Supabase error kind (``transient``, ``auth_expired``,
    ``permanent``, ``not_found``, ``exists``), ``schema_missing``, ``signed_out``, the code of
    a local :class:`SidecarError` (e.g. ``disk_full``), else ``internal`` (a bug: see the log)."""
    if isinstance(exc, SupabaseError):
        return "schema_missing" if exc.remote_code in SCHEMA_MISSING else exc.kind
    if isinstance(exc, SyncSignedOut):
        return "signed_out"
    if isinstance(exc, SidecarError):
        return exc.code
    return "internal"

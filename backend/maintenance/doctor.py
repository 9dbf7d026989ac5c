"""``docsidecar doctor``: check the database, rebuild what is derived, say what is not.

One run: the checks of :mod:`backend.maintenance.checks`; then (unless ``repair=False``) the
repairs their findings name, each in its own write transaction through the store's writer
(:mod:`backend.maintenance.derived`: FTS5 ``rebuild``, vec0 tables re-quantised from the stored
float vectors, orphan rows removed, chunk counts fixed, an ``embed_missing`` job for chunks
that lack a vector); then the checks again. Nothing is re-extracted and nothing is embedded
again except chunks that really have no vector. The report is stored in ``kv`` (``/v1/status``
shows it under ``doctor``).

The same :class:`Doctor` serves ``docsidecar doctor`` in-process (under the instance lock,
with only the store started) and ``POST /v1/doctor`` in a running sidecar. One run at a time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import apsw

from backend.errors import Conflict
from backend.ingest.index_tx import ensure_embed_missing_job
from backend.maintenance import checks, derived
from backend.maintenance.checks import Finding
from backend.maintenance.clock import SYSTEM_CLOCK, Clock
from backend.maintenance.doctor_state import save_report
from backend.store import Store

log = logging.getLogger("docsidecar.doctor")

_ORDER = (checks.DELETE_ORPHANS, checks.FIX_CHUNK_COUNTS, checks.REBUILD_FTS, "rebuild_vectors:", checks.EMBED_MISSING)
_WHAT = {
    checks.DELETE_ORPHANS: "unreachable rows removed",
    checks.FIX_CHUNK_COUNTS: "chunk counts fixed",
    checks.REBUILD_FTS: "keyword index rebuilt",
    checks.EMBED_MISSING: "missing vectors queued for embedding",
}


class DoctorBusy(Conflict):
    """Another doctor run is in progress."""

    code = "doctor_running"


def _rank(action: str) -> int:
    for i, prefix in enumerate(_ORDER):
        if action.startswith(prefix):
            return i
    return len(_ORDER)


def apply_repair(conn: apsw.Connection, action: str) -> int:
    """Run one repair inside the caller's write transaction; returns the rows it wrote."""
    if action == checks.DELETE_ORPHANS:
        return derived.delete_orphans(conn)
    if action == checks.FIX_CHUNK_COUNTS:
        return derived.fix_chunk_counts(conn)
    if action == checks.REBUILD_FTS:
        return derived.rebuild_fts(conn)
    if action.startswith("rebuild_vectors:"):
        return derived.rebuild_vectors(conn, action.split(":", 1)[1])
    if action == checks.EMBED_MISSING:
        ensure_embed_missing_job(conn)
        return 1
    raise ValueError(f"unknown repair {action!r}")


class Doctor:
    def __init__(
        self,
        store: Store,
        blob_exists: Callable[[str], bool],
        *,
        notify_jobs: Callable[[], None] | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.store = store
        self.blob_exists = blob_exists
        self.notify_jobs = notify_jobs
        self.clock = clock
        self._busy = threading.Lock()

    def run(self, *, repair: bool = True, quick: bool = False) -> dict[str, Any]:
        if not self._busy.acquire(blocking=False):
            raise DoctorBusy("docsidecar doctor is already running")
        try:
            return self._run(repair, quick)
        finally:
            self._busy.release()

    # -- internals ---------------------------------------------------------------------------------
    def _blob_exists(self, key: str) -> bool:
        try:
            return self.blob_exists(key)
        except (ValueError, OSError):
            return False

    def collect(self, *, quick: bool = False) -> list[Finding]:
        findings = checks.sqlite_integrity(self.store.path, quick=quick)
        try:
            findings += self.store.write(checks.shadow_tables)
            findings += self.store.write(checks.fts_structure)
        except apsw.Error as exc:  # e.g. the commit of the (empty) check transaction hits the damage
            findings.append(Finding("fts", derived.FTS_TABLE, f"the keyword index cannot be checked: {exc}",
                                    checks.REBUILD_FTS))  # fmt: skip
        with self.store.read() as conn:
            findings += checks.foreign_keys(conn)
            findings += checks.vector_tables(conn)
            findings += checks.documents(conn, self._blob_exists)
        return findings

    def _run(self, repair: bool, quick: bool) -> dict[str, Any]:
        started, t0 = self.clock.time(), time.perf_counter()
        found = self.collect(quick=quick)
        repaired: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []
        actions = sorted({f.repair for f in found if f.repair}, key=lambda a: (_rank(a), a)) if repair else []
        for action in actions:
            try:
                rows = self.store.write(_repair_fn(action))
            except Exception as exc:
                log.exception("repair %s failed", action)
                failed.append({"action": action, "error": f"{type(exc).__name__}: {exc}"})
            else:
                log.warning("doctor: %s (%d rows)", action, rows)
                repaired.append({"action": action, "rows": rows})
        if any(r["action"] == checks.EMBED_MISSING for r in repaired) and self.notify_jobs is not None:
            self.notify_jobs()
        remaining = self.collect(quick=quick) if repaired or failed else found
        if any(r["action"] == checks.EMBED_MISSING for r in repaired):
            remaining = [f for f in remaining if f.repair != checks.EMBED_MISSING]  # queued, being fixed
        report: dict[str, Any] = {
            "checked_at": started,
            "duration_s": round(time.perf_counter() - t0, 3),
            "mode": "repair" if repair else "check",
            "quick": quick,
            "ok": not remaining,
            "problems_found": [f.to_dict() for f in found],
            "repaired": repaired,
            "repair_failed": failed,
            "remaining": [f.to_dict() for f in remaining],
        }
        report["summary"] = describe(report)
        try:
            self.store.write(lambda c: save_report(c, report))
        except Exception as exc:  # noqa: BLE001 - the report is still returned
            log.warning("cannot store the doctor report: %s", exc)
        return report


def _repair_fn(action: str) -> Callable[[apsw.Connection], int]:
    return lambda conn: apply_repair(conn, action)


def describe(report: dict[str, Any]) -> str:
    """One line for people: what was found, what was done, what is left and what to do."""
    found, remaining = report["problems_found"], report["remaining"]
    if not found:
        return "healthy: no problems found"
    parts = [f"{len(found)} problem(s) found"]
    if report["repaired"]:
        done = []
        for r in report["repaired"]:
            action = r["action"]
            what = _WHAT.get(action) or f"vector index of {action.split(':', 1)[1]} rebuilt"
            done.append(f"{what} ({r['rows']} rows)" if action != checks.EMBED_MISSING else what)
        parts.append("repaired: " + ", ".join(done))
    elif report["mode"] == "check":
        parts.append("nothing changed (check only; run without --check-only to repair)")
    if remaining:
        canonical = [f for f in remaining if not f["repair"]]
        parts.append(f"{len(remaining)} remaining")
        if canonical:
            parts.append(
                "damage in canonical data that cannot be rebuilt: restore the data dir from a backup, "
                "or re-add the affected files"
            )
    else:
        parts.append("all fixed")
    return "; ".join(parts)

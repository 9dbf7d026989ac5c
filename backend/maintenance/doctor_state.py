"""Where the last ``docsidecar doctor`` report is kept (``kv``), for ``/v1/status``.

The report is written by whichever process ran the doctor (the CLI in-process, or a running
sidecar through ``POST /v1/doctor``), so a sidecar started later still shows it.
"""

from __future__ import annotations

import json
from typing import Any

import apsw

from backend.store import kv

REPORT_KEY = "maintenance.doctor"
_SUMMARY_FIELDS = ("checked_at", "ok", "mode", "quick", "problems_found", "repaired", "remaining", "summary")


def save_report(conn: apsw.Connection, report: dict[str, Any]) -> None:
    kv.put(conn, REPORT_KEY, json.dumps(report, default=str))


def last_report(conn: apsw.Connection) -> dict[str, Any] | None:
    """The last report in short form (``remaining`` as a count): ``None`` if never run."""
    raw = kv.get(conn, REPORT_KEY)
    if raw is None:
        return None
    try:
        report = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(report, dict):
        return None
    short = {k: report.get(k) for k in _SUMMARY_FIELDS}
    short["remaining"] = len(report.get("remaining") or [])
    short["problems_found"] = len(report.get("problems_found") or [])
    return short

"""Index coverage: per folder and per scope, what is indexed, pending, skipped or failed.

"Indexed" means searchable by meaning: status ``embedded`` or ``synced``. A file with no text
is never counted as indexed — it is ``skipped`` with its reason ("no_text", "unsupported").
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import apsw

INDEXED = {"embedded", "synced"}
PENDING = {"queued", "extracted", "chunked"}
SKIPPED = {"unsupported", "no_text"}
FAILED = {"failed"}


def _bucket(status: str) -> str:
    if status in INDEXED:
        return "indexed"
    if status in PENDING:
        return "pending"
    if status in SKIPPED:
        return "skipped"
    return "failed"


def _reason_key(status: str, reason: str | None) -> str:
    if status == "no_text":
        return "no text (scanned PDF or empty file)"
    if not reason:
        return status
    return reason.split(":")[0].strip()[:120]


def _summary(group: dict[str, Any]) -> str:
    text = f"{group['indexed']}/{group['total']} indexed"
    for name in ("pending", "skipped", "failed"):
        if group[name]:
            top = ", ".join(f"{k} ({v})" for k, v in group[f"{name}_reasons"].most_common(3))
            text += f", {group[name]} {name}" + (f": {top}" if name != "pending" else "")
    return text


def coverage(conn: apsw.Connection) -> dict[str, Any]:
    folders = {int(r[0]): str(r[1]) for r in conn.execute("SELECT id, path FROM folders")}
    by_folder: dict[Any, dict[str, Any]] = defaultdict(_empty)
    by_scope: dict[str, dict[str, Any]] = defaultdict(_empty)
    rows = conn.execute("SELECT folder_id, scope, status, status_reason, count(*) FROM documents GROUP BY 1, 2, 3, 4")
    for folder_id, scope, status, reason, n in rows:
        bucket = _bucket(str(status))
        for group in (by_folder[folder_id], by_scope[str(scope)]):
            group["total"] += n
            group[bucket] += n
            if bucket != "indexed":
                group[f"{bucket}_reasons"][_reason_key(str(status), reason)] += n
    out_folders = []
    for folder_id, path in folders.items():
        group = by_folder.get(folder_id, _empty())
        out_folders.append({"folder_id": folder_id, "path": path, **_render(group)})
    if None in by_folder:
        out_folders.append({"folder_id": None, "path": None, **_render(by_folder[None])})
    return {
        "folders": out_folders,
        "scopes": [{"scope": s, **_render(g)} for s, g in sorted(by_scope.items())],
    }


def _empty() -> dict[str, Any]:
    return {
        "total": 0,
        "indexed": 0,
        "pending": 0,
        "skipped": 0,
        "failed": 0,
        "pending_reasons": Counter(),
        "skipped_reasons": Counter(),
        "failed_reasons": Counter(),
    }


def _render(group: dict[str, Any]) -> dict[str, Any]:
    return {
        "total": group["total"],
        "indexed": group["indexed"],
        "pending": group["pending"],
        "skipped": group["skipped"],
        "failed": group["failed"],
        "skipped_reasons": dict(group["skipped_reasons"]),
        "failed_reasons": dict(group["failed_reasons"]),
        "summary": _summary(group),
    }

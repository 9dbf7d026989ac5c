"""Sync state in SQLite: kv keys, per-document bookkeeping, dead letters, conflicts.

Every function takes an apsw connection (the writer's inside its transaction, or a reader's)."""

from __future__ import annotations

import json
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Any

import apsw

from backend.store import kv
from sync.versions import Version, next_hlc, version_of

DEVICE_ID = "sync.device_id"
DEVICE_NAME = "sync.device_name"
HLC_LAST = "sync.hlc_last"
HLC_SEEN = "sync.hlc_seen"
CURSOR = "sync.cursor"
ACCOUNT = "sync.user_id"
LAST_SUCCESS = "sync.last_success"
LAST_ERROR = "sync.last_error"


@dataclass(frozen=True, slots=True)
class DocSync:
    document_id: str
    base: Version | None
    base_sha256: str | None
    base_deleted: bool
    storage_key: str | None
    prep_seq: int | None
    prep: Version | None


# -- device and clock ------------------------------------------------------------------------
def ensure_device(conn: apsw.Connection) -> tuple[str, str]:
    """This data dir's device id (created once) and a human label for conflicted copies."""
    device = kv.get(conn, DEVICE_ID)
    if device is None:
        device = str(uuid.uuid4())
        kv.put(conn, DEVICE_ID, device)
    name = kv.get(conn, DEVICE_NAME)
    if name is None:
        name = "".join(c for c in socket.gethostname() if c.isalnum() or c in "-_")[:30] or device[:8]
        kv.put(conn, DEVICE_NAME, name)
    return device, name


def tick(conn: apsw.Connection, now: float | None = None) -> int:
    """Allocate the next hybrid-logical-clock value (persisted in the caller's transaction)."""
    now_ms = int((time.time() if now is None else now) * 1000)
    last = int(kv.get(conn, HLC_LAST, "0") or "0")
    seen = int(kv.get(conn, HLC_SEEN, "0") or "0")
    value = next_hlc(now_ms, last, seen)
    kv.put(conn, HLC_LAST, str(value))
    return value


def observe(conn: apsw.Connection, hlc: int) -> None:
    """Remember the largest clock value seen from anyone (our next versions go above it)."""
    if hlc > int(kv.get(conn, HLC_SEEN, "0") or "0"):
        kv.put(conn, HLC_SEEN, str(hlc))


# -- account binding --------------------------------------------------------------------------
def bind_account(conn: apsw.Connection, user_id: str) -> bool:
    """Tie the sync state to ``user_id``; a different account starts from scratch (cursor and
    per-document versions are the old account's). Returns True when it reset."""
    current = kv.get(conn, ACCOUNT)
    if current == user_id:
        return False
    conn.execute("DELETE FROM sync_documents")
    conn.execute("DELETE FROM kv WHERE key = ?", (CURSOR,))
    kv.put(conn, ACCOUNT, user_id)
    return current is not None


# -- per-document rows ------------------------------------------------------------------------
def get_doc(conn: apsw.Connection, doc_id: str) -> DocSync | None:
    row = conn.execute(
        "SELECT base_hlc, base_device, base_sha256, base_deleted, storage_key, prep_seq, prep_hlc, prep_device "
        "FROM sync_documents WHERE document_id = ?",
        (doc_id,),
    ).fetchone()
    if row is None:
        return None
    return DocSync(doc_id, version_of(row[0], row[1]), row[2], bool(row[3]), row[4], row[5], version_of(row[6], row[7]))


def set_prepared(conn: apsw.Connection, doc_id: str, seq: int, v: Version) -> None:
    conn.execute(
        "INSERT INTO sync_documents(document_id, prep_seq, prep_hlc, prep_device, updated_at) VALUES (?,?,?,?,?) "
        "ON CONFLICT(document_id) DO UPDATE SET prep_seq = excluded.prep_seq, prep_hlc = excluded.prep_hlc, "
        "prep_device = excluded.prep_device, updated_at = excluded.updated_at",
        (doc_id, seq, v.hlc, v.device, time.time()),
    )


def clear_prepared(conn: apsw.Connection, doc_id: str) -> None:
    conn.execute(
        "UPDATE sync_documents SET prep_seq = NULL, prep_hlc = NULL, prep_device = NULL, updated_at = ? "
        "WHERE document_id = ?",
        (time.time(), doc_id),
    )


def set_base(conn: apsw.Connection, doc_id: str, row: dict[str, Any] | Any) -> None:
    """The server's version ``row`` (a pulled or pushed document) is what we now derive from."""
    v = version_of(row.get("hlc"), row.get("origin_device"))
    assert v is not None
    deleted = bool(row.get("deleted"))
    conn.execute(
        "INSERT INTO sync_documents(document_id, base_hlc, base_device, base_sha256, base_deleted, storage_key, "
        "updated_at) VALUES (?,?,?,?,?,?,?) ON CONFLICT(document_id) DO UPDATE SET base_hlc = excluded.base_hlc, "
        "base_device = excluded.base_device, base_sha256 = excluded.base_sha256, "
        "base_deleted = excluded.base_deleted, storage_key = excluded.storage_key, "
        "prep_seq = NULL, prep_hlc = NULL, prep_device = NULL, updated_at = excluded.updated_at",
        (doc_id, v.hlc, v.device, row.get("sha256"), int(deleted), None if deleted else row.get("storage_key"),
         time.time()),
    )  # fmt: skip
    observe(conn, v.hlc)


# -- pending work -----------------------------------------------------------------------------
def has_pending(conn: apsw.Connection, doc_id: str) -> bool:
    """Local changes not on the server yet: outbox rows, dead letters, or an ingest in progress
    (a reindex records its outbox row only when it commits)."""
    row = conn.execute(
        "SELECT EXISTS(SELECT 1 FROM outbox WHERE entity = 'document' AND entity_id = ?1) "
        "OR EXISTS(SELECT 1 FROM sync_dead_letters WHERE entity = 'document' AND entity_id = ?1) "
        "OR EXISTS(SELECT 1 FROM jobs WHERE document_id = ?1 AND kind = 'ingest' AND state IN ('queued', 'running'))",
        (doc_id,),
    ).fetchone()
    return bool(row and row[0])


def delete_outbox(conn: apsw.Connection, doc_id: str, up_to_seq: int | None = None) -> int:
    if up_to_seq is None:
        conn.execute("DELETE FROM outbox WHERE entity = 'document' AND entity_id = ?", (doc_id,))
    else:
        conn.execute("DELETE FROM outbox WHERE entity = 'document' AND entity_id = ? AND seq <= ?", (doc_id, up_to_seq))
    return int(conn.changes())


# -- dead letters and conflicts ---------------------------------------------------------------
def add_dead_letter(
    conn: apsw.Connection,
    doc_id: str,
    op: str,
    stage: str,
    v: Version | None,
    seq: int | None,
    code: str,
    message: str,
    detail: dict[str, Any],
) -> int:
    conn.execute(
        "INSERT INTO sync_dead_letters(entity, entity_id, op, stage, hlc, device, outbox_seq, code, message, detail, "
        "created_at) VALUES ('document', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (doc_id, op, stage, v.hlc if v else None, v.device if v else None, seq, code, message,
         json.dumps(detail, default=str), time.time()),
    )  # fmt: skip
    return int(conn.last_insert_rowid())


def dead_letters(conn: apsw.Connection, limit: int = 100, before: int | None = None) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT id, entity, entity_id, op, stage, hlc, device, code, message, detail, created_at "
        "FROM sync_dead_letters WHERE (?1 IS NULL OR id < ?1) ORDER BY id DESC LIMIT ?2",
        (before, limit),
    )
    keys = ("id", "entity", "document_id", "op", "stage", "hlc", "device", "code", "message", "detail", "created_at")
    out = []
    for r in rows:
        item = dict(zip(keys, r, strict=True))
        item["detail"] = json.loads(item["detail"] or "{}")
        out.append(item)
    return out


def add_conflict(
    conn: apsw.Connection,
    doc_id: str,
    copy_id: str | None,
    kind: str,
    winner: Version,
    loser: Version | None,
    detail: dict[str, Any],
) -> int:
    conn.execute(
        "INSERT INTO sync_conflicts(document_id, copy_document_id, kind, winner_hlc, winner_device, loser_hlc, "
        "loser_device, detail, created_at) VALUES (?,?,?,?,?,?,?,?,?)",
        (doc_id, copy_id, kind, winner.hlc, winner.device, loser.hlc if loser else None,
         loser.device if loser else None, json.dumps(detail, default=str), time.time()),
    )  # fmt: skip
    return int(conn.last_insert_rowid())


def conflicts(conn: apsw.Connection, limit: int = 100, before: int | None = None) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT id, document_id, copy_document_id, kind, winner_hlc, winner_device, loser_hlc, loser_device, detail, "
        "created_at FROM sync_conflicts WHERE (?1 IS NULL OR id < ?1) ORDER BY id DESC LIMIT ?2",
        (before, limit),
    )
    out = []
    for r in rows:
        out.append(
            {
                "id": r[0],
                "document_id": r[1],
                "copy_document_id": r[2],
                "kind": r[3],
                "winner": {"hlc": r[4], "device": r[5]},
                "loser": {"hlc": r[6], "device": r[7]} if r[6] is not None else None,
                "detail": json.loads(r[8] or "{}"),
                "created_at": r[9],
            }
        )
    return out


def counts(conn: apsw.Connection) -> dict[str, int]:
    def scalar(sql: str) -> int:
        row = conn.execute(sql).fetchone()
        return int(row[0]) if row else 0

    return {
        "pending": scalar("SELECT count(DISTINCT entity_id) FROM outbox WHERE entity = 'document'"),
        "outbox_rows": scalar("SELECT count(*) FROM outbox"),
        "dead_letters": scalar("SELECT count(*) FROM sync_dead_letters"),
        "conflicts": scalar("SELECT count(*) FROM sync_conflicts"),
    }

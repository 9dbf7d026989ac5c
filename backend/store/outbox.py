"""Outbox: local changes waiting to be pushed to the cloud.

Rows are written in the same transaction as the change they describe, so a crash can never
leave a change without its outbox row or the other way round. ``change_id`` is the
idempotency key the server deduplicates on. Only the newest pending change per entity matters
for a state-based push, so recording a change replaces an older pending one for the same
entity (the sync engine reads the current state at push time anyway).
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import apsw


def record(conn: apsw.Connection, entity: str, entity_id: str, op: str, payload: dict[str, Any]) -> str:
    change_id = str(uuid.uuid4())
    conn.execute("DELETE FROM outbox WHERE entity = ? AND entity_id = ? AND attempts = 0", (entity, entity_id))
    conn.execute(
        "INSERT INTO outbox(change_id, entity, entity_id, op, payload, created_at) VALUES (?,?,?,?,?,?)",
        (change_id, entity, entity_id, op, json.dumps(payload), time.time()),
    )
    return change_id


def pending_count(conn: apsw.Connection) -> int:
    row = conn.execute("SELECT count(*) FROM outbox").fetchone()
    return int(row[0]) if row else 0

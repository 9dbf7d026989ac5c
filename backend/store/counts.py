"""Row counts for /v1/status."""

from __future__ import annotations

import apsw


def table_counts(conn: apsw.Connection) -> dict[str, object]:
    def scalar(sql: str) -> int:
        row = conn.execute(sql).fetchone()
        return int(row[0]) if row else 0

    jobs = {str(state): int(n) for state, n in conn.execute("SELECT state, count(*) FROM jobs GROUP BY state")}
    return {
        "documents": scalar("SELECT count(*) FROM documents"),
        "chunks": scalar("SELECT count(*) FROM chunks"),
        "embeddings": scalar("SELECT count(*) FROM embeddings"),
        "folders": scalar("SELECT count(*) FROM folders"),
        "jobs": jobs,
        "outbox": scalar("SELECT count(*) FROM outbox"),
    }

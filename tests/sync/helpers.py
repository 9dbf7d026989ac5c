"""Builders for sync changes and direct SQL access as a Supabase user (shared by tests/sync)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

from tests.supabase_gateway import PgCluster
from tests.supabase_gateway.db import api_transaction

DIM = 384


def unit_vectors(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def new_id() -> str:
    return str(uuid.uuid4())


def document_change(
    doc_id: str,
    hlc: int,
    device: str,
    base: tuple[int, str] | None = None,
    change_id: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    document = {"id": doc_id, "hlc": hlc, "origin_device": device, **fields}
    return {
        "change_id": change_id or new_id(),
        "kind": "document",
        "base_hlc": base[0] if base else None,
        "base_device": base[1] if base else None,
        "document": document,
    }


def chunks_change(
    doc_id: str,
    hlc: int,
    device: str,
    texts: list[str],
    vectors: np.ndarray | None = None,
    change_id: str | None = None,
) -> dict[str, Any]:
    vecs = vectors if vectors is not None else unit_vectors(len(texts), seed=hlc)
    chunks = []
    offset = 0
    for i, text in enumerate(texts):
        chunks.append(
            {
                "id": new_id(),
                "ordinal": i,
                "text": text,
                "char_start": offset,
                "char_end": offset + len(text),
                "page": None,
                "heading_path": ["H1"],
                "model_id": "minilm-l6-v2",
                "embedding": [float(x) for x in vecs[i]],
            }
        )
        offset += len(text)
    return {
        "change_id": change_id or new_id(),
        "kind": "chunks",
        "document_id": doc_id,
        "doc_hlc": hlc,
        "doc_device": device,
        "chunks": chunks,
    }


def add_user(cluster: PgCluster, database: str, email: str | None = None) -> str:
    user_id = new_id()
    with cluster.connect(database, autocommit=True) as conn:
        conn.execute(
            "insert into auth.users (id, email) values (%s, %s)",
            (user_id, email or f"{user_id}@example.com"),
        )
    return user_id


class SqlUser:
    """Calls the RPCs over a plain connection exactly as PostgREST would for ``user_id``."""

    def __init__(self, conn: psycopg.Connection, user_id: str) -> None:
        self.conn = conn
        self.user_id = user_id

    @contextmanager
    def tx(self) -> Iterator[psycopg.Connection]:
        claims = {"sub": self.user_id, "role": "authenticated", "aud": "authenticated"}
        with api_transaction(self.conn, "authenticated", claims) as tx:
            yield tx

    def call(self, statement: str, *params: Any) -> Any:
        with self.tx() as tx:
            row = tx.execute(statement, params).fetchone()
        return row[0] if row else None

    def push(self, changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        result = self.call("select public.sync_push(%s)", Jsonb(changes))
        return list(result["results"])

    def pull(self, cursor: str | None = None, limit: int = 500) -> dict[str, Any]:
        return dict(self.call("select public.sync_pull(%s, %s)", cursor, limit))

    def pull_all(self, cursor: str | None = None, limit: int = 500) -> tuple[list[dict[str, Any]], str | None]:
        rows: list[dict[str, Any]] = []
        while True:
            page = self.pull(cursor, limit)
            rows.extend(page["changes"])
            cursor = page["next_cursor"]
            if not page["has_more"]:
                return rows, cursor

    def match(self, vector: np.ndarray, count: int = 10, scope: str | None = None) -> list[Any]:
        with self.tx() as tx:
            return tx.execute(
                "select chunk_id::text, document_id::text, similarity from public.match_chunks("
                "%s::text::extensions.vector, %s, %s)",
                (json.dumps([float(x) for x in vector]), count, scope),
            ).fetchall()

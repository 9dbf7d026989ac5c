"""sync_pull: paging, re-delivery of updated rows, and the out-of-order commit case."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import ExitStack

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.types.json import Jsonb

from tests.supabase_gateway import PgCluster
from tests.supabase_gateway.db import api_transaction
from tests.sync.helpers import SqlUser, add_user, document_change, new_id

Users = Callable[[], SqlUser]


def _claims(user: SqlUser) -> dict[str, str]:
    return {"sub": user.user_id, "role": "authenticated"}


def test_paging_delivers_every_row_once_in_order(sql_users: Users) -> None:
    alice = sql_users()
    docs = [new_id() for _ in range(7)]
    for i, doc in enumerate(docs):
        alice.push([document_change(doc, 10 + i, "A")])
    pages = []
    cursor = None
    while True:
        page = alice.pull(cursor, limit=3)
        pages.append([r["id"] for r in page["changes"]])
        cursor = page["next_cursor"]
        if not page["has_more"]:
            break
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [d for p in pages for d in p] == docs  # one transaction per push: commit order
    again = alice.pull(cursor, limit=3)
    assert again == {"changes": [], "next_cursor": cursor, "has_more": False}


def test_updated_row_is_delivered_again_after_the_cursor(sql_users: Users) -> None:
    alice = sql_users()
    doc, other = new_id(), new_id()
    alice.push([document_change(doc, 10, "A")])
    alice.push([document_change(other, 10, "A")])
    rows, cursor = alice.pull_all()
    assert [r["id"] for r in rows] == [doc, other]
    alice.push([document_change(doc, 20, "A", base=(10, "A"), deleted=True)])
    rows, cursor2 = alice.pull_all(cursor)
    assert [(r["id"], r["hlc"], r["deleted"]) for r in rows] == [(doc, 20, True)]
    assert cursor2 != cursor


def test_pull_sees_only_the_callers_rows(sql_users: Users) -> None:
    alice, bob = sql_users(), sql_users()
    alice.push([document_change(new_id(), 1, "A")])
    bob_doc = new_id()
    bob.push([document_change(bob_doc, 1, "B")])
    rows, _ = bob.pull_all()
    assert [r["id"] for r in rows] == [bob_doc]


@pytest.mark.parametrize("cursor", ["garbage", "1:not-a-uuid", "-1:" + "0" * 36, "1:2:3"])
def test_invalid_cursor_is_a_400_class_error(sql_users: Users, cursor: str) -> None:
    alice = sql_users()
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        alice.pull(cursor)


@pytest.mark.parametrize("limit", [0, -5, 1001])
def test_invalid_limit_is_rejected(sql_users: Users, limit: int) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        sql_users().pull(None, limit)


def test_out_of_order_commit_is_never_skipped(sql_users: Users, pg_cluster: PgCluster, pg_database: str) -> None:
    """T1 writes first but commits after T2; a pull in between must not pass T1's row."""
    alice = sql_users()
    seen, cursor = alice.pull_all()
    assert seen == []
    early, late = new_id(), new_id()
    with ExitStack() as stack:
        c1 = stack.enter_context(pg_cluster.connect(pg_database, "authenticator", autocommit=True))
        c2 = stack.enter_context(pg_cluster.connect(pg_database, "authenticator", autocommit=True))
        with api_transaction(c1, "authenticated", _claims(alice)) as t1:
            t1.execute("select public.sync_push(%s)", (Jsonb([document_change(early, 1, "A")]),))
            xid1 = int(t1.execute("select pg_current_xact_id()::text").fetchone()[0])
            with api_transaction(c2, "authenticated", _claims(alice)) as t2:
                t2.execute("select public.sync_push(%s)", (Jsonb([document_change(late, 1, "A")]),))
                xid2 = int(t2.execute("select pg_current_xact_id()::text").fetchone()[0])
            assert xid1 < xid2  # T1 started writing first...
            # ...T2 has committed, T1 has not. T2's row is visible to everyone now: a cursor of
            # "largest transaction id seen" would move to xid2 and later miss T1's row.
            visible = alice.call("select array_agg(id::text) from public.documents")
            assert visible == [late]
            page = alice.pull(cursor)
            assert page["changes"] == []
            assert page["next_cursor"] == cursor  # did not advance past T1's (future) row
        # T1 committed (after T2).
    rows, cursor = alice.pull_all(cursor)
    assert [r["id"] for r in rows] == [early, late]
    assert alice.pull(cursor)["changes"] == []


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    commit_order=st.permutations(range(4)),
    pull_after=st.lists(st.booleans(), min_size=4, max_size=4),
    page=st.integers(min_value=1, max_value=3),
)
def test_any_commit_order_delivers_every_row_exactly_once(
    sql_users: Users,
    pg_cluster: PgCluster,
    pg_database: str,
    commit_order: list[int],
    pull_after: list[bool],
    page: int,
) -> None:
    """Four transactions write in order 0..3 and commit in ``commit_order``; pulls happen
    between commits. Everything pulled, in the end, is every row exactly once."""
    del sql_users
    docs = [new_id() for _ in range(4)]
    delivered: list[str] = []
    cursor: str | None = None
    user_id = add_user(pg_cluster, pg_database)

    def pull() -> None:
        nonlocal cursor
        rows, cursor = alice.pull_all(cursor, limit=page)
        delivered.extend(r["id"] for r in rows)

    with ExitStack() as stack:
        alice = SqlUser(
            stack.enter_context(pg_cluster.connect(pg_database, "authenticator", autocommit=True)),
            user_id,
        )
        conns = [stack.enter_context(pg_cluster.connect(pg_database, "authenticator")) for _ in docs]
        for conn, doc in zip(conns, docs, strict=True):
            conn.execute("set role authenticated")
            conn.execute("select set_config('request.jwt.claims', %s, false)", (json.dumps(_claims(alice)),))
            conn.execute("select public.sync_push(%s)", (Jsonb([document_change(doc, 1, "A")]),))
        for step, index in enumerate(commit_order):
            conns[index].commit()
            if pull_after[step]:
                pull()
        pull()
    assert sorted(delivered) == sorted(docs)
    assert len(delivered) == len(set(delivered))

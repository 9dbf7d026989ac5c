"""sync_push on the real migrations: idempotency, last-writer-wins, conflicts, rejections."""

from __future__ import annotations

from collections.abc import Callable

from tests.sync.helpers import SqlUser, chunks_change, document_change, new_id

Users = Callable[[], SqlUser]


def _count(user: SqlUser, table: str, doc_id: str) -> int:
    column = "id" if table == "documents" else "document_id"
    return int(user.call(f"select count(*) from public.{table} where {column} = %s", doc_id))


def test_new_document_with_chunks_is_accepted(sql_users: Users) -> None:
    alice = sql_users()
    doc = new_id()
    results = alice.push([chunks_change(doc, 10, "A", ["one", "two"]), document_change(doc, 10, "A", title="Report")])
    assert [r["status"] for r in results] == ["accepted", "accepted"]
    assert results[0]["count"] == 2
    current = results[1]["current"]
    assert current["title"] == "Report" and current["user_id"] == alice.user_id
    assert (current["hlc"], current["origin_device"]) == (10, "A")
    assert _count(alice, "chunks", doc) == 2


def test_retried_batch_returns_same_results_and_changes_nothing_twice(sql_users: Users) -> None:
    alice = sql_users()
    doc = new_id()
    batch = [chunks_change(doc, 10, "A", ["a", "b", "c"]), document_change(doc, 10, "A")]
    first = alice.push(batch)
    xid_before = alice.call("select change_xid::text from public.documents where id = %s", doc)
    second = alice.push(batch)
    assert second == first
    # Not re-applied: the row was not rewritten (same transaction stamp) and no chunk doubled.
    assert alice.call("select change_xid::text from public.documents where id = %s", doc) == xid_before
    assert _count(alice, "chunks", doc) == 3
    # A later edit, then a replay of the old batch: the old change must not roll the doc back.
    edit = document_change(doc, 20, "A", base=(10, "A"), title="v2")
    assert alice.push([edit])[0]["status"] == "accepted"
    assert alice.push(batch) == first
    assert alice.call("select title from public.documents where id = %s", doc) == "v2"


def test_duplicate_change_id_inside_one_batch_applies_once(sql_users: Users) -> None:
    alice = sql_users()
    doc = new_id()
    change = document_change(doc, 10, "A")
    results = alice.push([change, change])
    assert results[0] == results[1]
    assert _count(alice, "documents", doc) == 1


def test_fast_forward_edit_is_accepted_without_replaced(sql_users: Users) -> None:
    alice = sql_users()
    doc = new_id()
    alice.push([document_change(doc, 10, "A")])
    result = alice.push([document_change(doc, 11, "B", base=(10, "A"), title="edited")])[0]
    assert result["status"] == "accepted"
    assert result["replaced"] is None
    assert result["current"]["title"] == "edited"


def test_concurrent_edit_that_loses_is_a_conflict_with_server_version(sql_users: Users) -> None:
    alice = sql_users()
    doc = new_id()
    alice.push([document_change(doc, 10, "A")])
    # Device B uploads the chunks of its edit of version 10 (could still win: 20 > 10)...
    assert alice.push([chunks_change(doc, 20, "B", ["b1"])])[0]["status"] == "accepted"
    # ...meanwhile device A pushes its own edit of version 10 with a newer clock...
    assert alice.push([document_change(doc, 30, "A", base=(10, "A"), title="A's")])[0]["status"] == "accepted"
    # ...then B's document change arrives: concurrent and older, so it loses.
    result = alice.push([document_change(doc, 20, "B", base=(10, "A"), title="B's")])[0]
    assert result["status"] == "conflict"
    assert result["current"]["title"] == "A's"
    assert (result["current"]["hlc"], result["current"]["origin_device"]) == (30, "A")
    assert alice.call("select title from public.documents where id = %s", doc) == "A's"
    # The losing version's chunks were removed with it.
    assert _count(alice, "chunks", doc) == 0


def test_concurrent_edit_that_wins_reports_the_replaced_version(sql_users: Users) -> None:
    alice = sql_users()
    doc = new_id()
    alice.push([document_change(doc, 10, "A")])
    alice.push(
        [
            chunks_change(doc, 20, "A", ["a"]),
            document_change(doc, 20, "A", base=(10, "A"), title="A's"),
        ]
    )
    results = alice.push(
        [
            chunks_change(doc, 30, "B", ["b1", "b2"]),
            document_change(doc, 30, "B", base=(10, "A"), title="B's"),
        ]
    )
    assert results[1]["status"] == "accepted"
    assert results[1]["replaced"]["title"] == "A's"
    assert results[1]["current"]["title"] == "B's"
    # Only the current version's chunks remain.
    rows = alice.call("select array_agg(distinct doc_device) from public.chunks where document_id = %s", doc)
    assert rows == ["B"]


def test_equal_hlc_tie_is_broken_by_device_id_deterministically(sql_users: Users) -> None:
    alice = sql_users()
    doc = new_id()
    alice.push([document_change(doc, 10, "A")])
    first = alice.push([document_change(doc, 50, "dev-b", base=(10, "A"))])[0]
    second = alice.push([document_change(doc, 50, "dev-a", base=(10, "A"))])[0]
    assert first["status"] == "accepted"
    assert second["status"] == "conflict"  # "dev-a" < "dev-b" bytewise
    assert second["current"]["origin_device"] == "dev-b"


def test_stale_fast_forward_is_rejected_not_applied(sql_users: Users) -> None:
    alice = sql_users()
    doc = new_id()
    alice.push([document_change(doc, 10, "A")])
    result = alice.push([document_change(doc, 5, "A", base=(10, "A"))])[0]
    assert result["status"] == "rejected"
    assert result["error"]["code"] == "22023"


def test_invalid_items_are_rejected_individually_and_batch_still_applies(sql_users: Users) -> None:
    alice = sql_users()
    good, bad_sha, bad_vec = new_id(), new_id(), new_id()
    wrong_dims = chunks_change(bad_vec, 10, "A", ["x"])
    wrong_dims["chunks"][0]["embedding"] = [1.0, 0.0, 0.0]
    not_normalised = chunks_change(bad_vec, 11, "A", ["y"])
    not_normalised["chunks"][0]["embedding"] = [2.0] * 384
    results = alice.push(
        [
            document_change(bad_sha, 10, "A", sha256="not-a-hash"),
            wrong_dims,
            not_normalised,
            {"change_id": new_id(), "kind": "bogus"},
            document_change(good, 10, "A"),
        ]
    )
    assert [r["status"] for r in results] == ["rejected"] * 4 + ["accepted"]
    assert results[0]["error"]["code"] == "23514"  # check constraint on sha256
    assert results[1]["error"]["code"] == "22000"  # pgvector: expected 384 dimensions
    assert results[2]["error"]["code"] == "23514"  # embedding must be L2-normalised
    assert results[3]["error"]["code"] == "22023"
    assert _count(alice, "documents", good) == 1
    assert _count(alice, "documents", bad_sha) == 0
    # Rejections are stored like any result: a retry gets the same answer.
    assert alice.push([{"change_id": results[3]["change_id"], "kind": "bogus"}]) == [results[3]]


def test_storage_key_requires_uploaded_object(sql_users: Users) -> None:
    alice = sql_users()
    doc = new_id()
    sha = "a" * 64
    key = f"{alice.user_id}/{doc}/{sha}"
    result = alice.push([document_change(doc, 10, "A", sha256=sha, storage_key=key)])[0]
    assert result["status"] == "rejected" and result["error"]["code"] == "23503"
    # A key that does not follow <user>/<doc>/<sha256> violates the format check.
    other = document_change(new_id(), 10, "A", sha256=sha, storage_key=f"{alice.user_id}/x/{sha}")
    assert alice.push([other])[0]["error"]["code"] in ("23503", "23514")


def test_chunks_for_a_version_that_already_lost_are_a_conflict(sql_users: Users) -> None:
    alice = sql_users()
    doc = new_id()
    alice.push([document_change(doc, 50, "A")])
    result = alice.push([chunks_change(doc, 40, "B", ["late"])])[0]
    assert result["status"] == "conflict"
    assert result["current"]["hlc"] == 50
    assert _count(alice, "chunks", doc) == 0


def test_chunk_id_reused_for_another_version_is_rejected(sql_users: Users) -> None:
    alice = sql_users()
    doc = new_id()
    first = chunks_change(doc, 10, "A", ["a"])
    alice.push([first, document_change(doc, 10, "A")])
    again = chunks_change(doc, 20, "A", ["a"])
    again["chunks"][0]["id"] = first["chunks"][0]["id"]
    result = alice.push([again])[0]
    assert result["status"] == "rejected" and result["error"]["code"] == "23505"


def test_malformed_batches_fail_whole(sql_users: Users) -> None:
    import psycopg
    import pytest
    from psycopg.types.json import Jsonb

    alice = sql_users()
    for payload in ({"not": "an array"}, [{"kind": "document"}], ["string"]):
        with pytest.raises(psycopg.errors.InvalidParameterValue):
            alice.call("select public.sync_push(%s)", Jsonb(payload))
    too_many = [document_change(new_id(), 1, "A") for _ in range(1001)]
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        alice.call("select public.sync_push(%s)", Jsonb(too_many))

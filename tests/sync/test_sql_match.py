"""match_chunks: nearest chunks by cosine distance over the caller's current versions."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tests.sync.helpers import SqlUser, chunks_change, document_change, new_id, unit_vectors

Users = Callable[[], SqlUser]


def _load(user: SqlUser, vectors: np.ndarray, per_doc: int, scope: str = "default", device: str = "A") -> list[str]:
    ids: list[str] = []
    for start in range(0, len(vectors), per_doc):
        doc = new_id()
        block = vectors[start : start + per_doc]
        change = chunks_change(doc, 10, device, [f"text {start + i}" for i in range(len(block))], block)
        user.push([change, document_change(doc, 10, device, scope=scope)])
        ids.extend(c["id"] for c in change["chunks"])
    return ids


def test_returns_exact_nearest_neighbours_in_order(sql_users: Users) -> None:
    alice = sql_users()
    vectors = unit_vectors(300, seed=7)
    ids = _load(alice, vectors, per_doc=50)
    queries = unit_vectors(5, seed=99)
    for q in queries:
        got = alice.match(q, count=10)
        sims = vectors @ q
        expected = [ids[i] for i in np.argsort(-sims)[:10]]
        assert [g[0] for g in got] == expected
        np.testing.assert_allclose([g[2] for g in got], np.sort(sims)[::-1][:10], atol=1e-5)


def test_filters_scope_deleted_and_superseded_versions(sql_users: Users) -> None:
    alice = sql_users()
    target = unit_vectors(1, seed=1)[0]
    doc = new_id()
    alice.push(
        [
            chunks_change(doc, 10, "A", ["old"], target[None, :]),
            document_change(doc, 10, "A", scope="work"),
        ]
    )
    assert [r[1] for r in alice.match(target, 5)] == [doc]
    assert alice.match(target, 5, scope="home") == []
    assert [r[1] for r in alice.match(target, 5, scope="work")] == [doc]
    # Pending chunks of a newer version are not searchable until the version is current.
    newer = unit_vectors(1, seed=2)
    alice.push([chunks_change(doc, 20, "A", ["new"], newer)])
    assert len(alice.match(newer[0], 5)) == 1
    assert alice.match(newer[0], 5)[0][0] == alice.match(target, 5)[0][0]  # still the old chunk
    alice.push([document_change(doc, 30, "A", base=(10, "A"), deleted=True)])
    assert alice.match(target, 5) == []


def test_other_users_chunks_are_invisible(sql_users: Users) -> None:
    alice, bob = sql_users(), sql_users()
    vec = unit_vectors(1, seed=3)
    _load(alice, vec, per_doc=1)
    assert bob.match(vec[0], 5) == []
    assert len(alice.match(vec[0], 5)) == 1


def test_match_count_is_capped(sql_users: Users) -> None:
    alice = sql_users()
    vectors = unit_vectors(20, seed=5)
    _load(alice, vectors, per_doc=20)
    assert len(alice.match(vectors[0], count=0)) == 0
    assert len(alice.match(vectors[0], count=-3)) == 0
    assert len(alice.match(vectors[0], count=5)) == 5
    assert len(alice.match(vectors[0], count=10_000)) == 20

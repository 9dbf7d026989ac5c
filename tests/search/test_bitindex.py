"""The in-memory binary mirror stays identical to the vec0 table through every kind of change
(including sqlite-vec reusing a freed slot of its newest block for the same chunk id)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backend.search.bitindex import BitMirror, MirrorUnsupported, check_layout
from backend.store import Store
from backend.store import vectors as vector_repo
from tests.search.builders import DocSpec, add_document, delete_document, unit_vectors

TABLE = "vec_chunks_1"


def truth(store: Store) -> dict[int, tuple[bytes, int]]:
    with store.read() as conn:
        rows = conn.execute(
            "SELECT e.chunk_id, e.vector, d.rowid FROM embeddings e JOIN chunks c ON c.id = e.chunk_id "
            "JOIN documents d ON d.id = c.document_id"
        ).fetchall()
    return {
        int(cid): (vector_repo.quantize(np.frombuffer(blob, dtype="<f4")).tobytes(), int(rowid))
        for cid, blob, rowid in rows
    }


def synced(store: Store, mirror: BitMirror) -> dict[int, tuple[bytes, int]]:
    with store.read() as conn:
        mirror.sync(conn, vector_repo.read_epoch(conn))
    return mirror.live_rows()


def test_layout_is_the_verified_one(store: Store) -> None:
    with store.read() as conn:
        check_layout(conn, TABLE)
        with pytest.raises(MirrorUnsupported):
            check_layout(conn, "vec_chunks_99")


ops = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(1, 700)),
        st.tuples(st.just("delete"), st.integers(0, 50)),
        st.tuples(st.just("replace"), st.integers(0, 50)),
        st.tuples(st.just("sync"), st.just(0)),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops, st.integers(0, 2**32 - 1))
def test_mirror_matches_the_table_after_any_changes(
    tmp_path_factory: pytest.TempPathFactory, steps: list[tuple[str, int]], seed: int
) -> None:
    store = Store(tmp_path_factory.mktemp("mirror") / "data")
    store.start()
    try:
        rng = np.random.default_rng(seed)
        mirror = BitMirror(TABLE, 384)
        docs: list[str] = []
        for op, n in steps:
            if op == "add":
                spec = DocSpec([f"t{i}" for i in range(n)], unit_vectors(rng, n))
                store.write(lambda c, s=spec: add_document(c, s))
                docs.append(spec.doc_id)
            elif op == "delete" and docs:
                doc_id = docs.pop(n % len(docs))
                store.write(lambda c, d=doc_id: delete_document(c, d))
            elif op == "replace" and docs:
                # delete the newest document and add one with the same chunk count: SQLite hands
                # out the same chunk ids and sqlite-vec refills the same slots with new vectors
                doc_id = docs.pop()
                with store.read() as conn:
                    count = conn.execute("SELECT count(*) FROM chunks WHERE document_id = ?", (doc_id,)).fetchone()[0]
                store.write(lambda c, d=doc_id: delete_document(c, d))
                spec = DocSpec([f"r{i}" for i in range(count)], unit_vectors(rng, count))
                store.write(lambda c, s=spec: add_document(c, s))
                docs.append(spec.doc_id)
            else:
                synced(store, mirror)
        assert synced(store, mirror) == truth(store)
    finally:
        store.stop()


def slots(store: Store) -> list[tuple[int, bytes, bytes]]:
    with store.read() as conn:
        return [
            (int(r[0]), bytes(r[1]), bytes(r[2]))
            for r in conn.execute(f"SELECT chunk_id, validity, rowids FROM {TABLE}_chunks ORDER BY chunk_id")
        ]


def test_same_ids_refilled_with_new_vectors_are_seen(store: Store) -> None:
    rng = np.random.default_rng(7)
    mirror = BitMirror(TABLE, 384)
    older = DocSpec([f"a{i}" for i in range(30)], unit_vectors(rng, 30))
    store.write(lambda c: add_document(c, older))
    newest = DocSpec([f"b{i}" for i in range(30)], unit_vectors(rng, 30))
    ids1 = store.write(lambda c: add_document(c, newest))
    assert synced(store, mirror) == truth(store)
    before = slots(store)
    store.write(lambda c: delete_document(c, newest.doc_id))
    again = DocSpec([f"c{i}" for i in range(30)], unit_vectors(rng, 30))
    ids2 = store.write(lambda c: add_document(c, again))
    # the situation this test is about: same chunk ids in the same slots, only the bits differ
    assert ids2 == ids1 and slots(store) == before
    assert synced(store, mirror) == truth(store)


def test_emptied_block_disappears_and_others_survive(store: Store) -> None:
    rng = np.random.default_rng(5)
    mirror = BitMirror(TABLE, 384)
    big = DocSpec([f"a{i}" for i in range(1024)], unit_vectors(rng, 1024))
    small = DocSpec([f"b{i}" for i in range(10)], unit_vectors(rng, 10))
    store.write(lambda c: add_document(c, big))
    store.write(lambda c: add_document(c, small))
    assert synced(store, mirror) == truth(store)
    store.write(lambda c: delete_document(c, big.doc_id))
    assert len(slots(store)) == 1  # sqlite-vec dropped the emptied block
    assert synced(store, mirror) == truth(store)
    more = DocSpec([f"c{i}" for i in range(2000)], unit_vectors(rng, 2000))
    store.write(lambda c: add_document(c, more))
    assert synced(store, mirror) == truth(store)


def test_rebuilt_table_is_reloaded(store: Store) -> None:
    rng = np.random.default_rng(3)
    mirror = BitMirror(TABLE, 384)
    spec = DocSpec([f"a{i}" for i in range(2100)], unit_vectors(rng, 2100))
    store.write(lambda c: add_document(c, spec))
    assert synced(store, mirror) == truth(store)
    # rewrite every vector in place, then rebuild the vec0 table from embeddings
    with store.read() as conn:
        ids = [int(r[0]) for r in conn.execute("SELECT chunk_id FROM embeddings ORDER BY chunk_id")]
    fresh = unit_vectors(rng, len(ids))

    def rewrite(conn: object) -> None:
        for cid, vec in zip(ids, fresh, strict=True):
            conn.execute("UPDATE embeddings SET vector = ? WHERE chunk_id = ?", (vector_repo.to_blob(vec), cid))  # type: ignore[attr-defined]
        vector_repo.rebuild_index(conn, vector_repo.DEFAULT_MODEL_ID)  # type: ignore[arg-type]

    store.write(rewrite)
    assert synced(store, mirror) == truth(store)


def test_candidates_are_the_nearest_by_hamming(store: Store) -> None:
    rng = np.random.default_rng(11)
    specs = [DocSpec([f"d{j}-{i}" for i in range(300)], unit_vectors(rng, 300), scope=f"s{j}") for j in range(4)]
    for spec in specs:
        store.write(lambda c, s=spec: add_document(c, s))
    mirror = BitMirror(TABLE, 384)
    rows = synced(store, mirror)
    q = unit_vectors(rng, 1)[0]
    qbits = vector_repo.quantize(q)
    qb = np.unpackbits(qbits)
    dist = {cid: int((np.unpackbits(np.frombuffer(b, dtype=np.uint8)) != qb).sum()) for cid, (b, _) in rows.items()}
    got, eligible = mirror.candidates(qbits, 50)
    assert eligible == 1200 and len(got) == 50
    cutoff = sorted(dist.values())[49]
    assert all(dist[int(c)] <= cutoff for c in got)
    assert sum(1 for d in dist.values() if d < cutoff) <= 50
    # a document mask restricts the scan, and a small allowed set comes back whole
    with store.read() as conn:
        rowid = conn.execute("SELECT rowid FROM documents WHERE id = ?", (specs[2].doc_id,)).fetchone()[0]
    allowed = np.zeros(rowid + 1, dtype=bool)
    allowed[rowid] = True
    got, eligible = mirror.candidates(qbits, 400, allowed)
    assert eligible == 300 and {int(c) for c in got} == {c for c, (_, r) in rows.items() if r == rowid}

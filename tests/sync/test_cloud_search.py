"""Cloud search (``match_chunks`` over pgvector, HNSW) returns the same top hits as the local
semantic search (``backend.search``) for the same data, and both agree with brute force over
the local ``embeddings`` table. Real model, a dozen short documents."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from backend.search.service import SearchRequest
from tests.supabase_gateway import Gateway
from tests.sync.conftest import Account
from tests.sync.devices import Device

DOCS = {
    "cats.txt": "Cats are small domesticated felines that purr, hunt mice and sleep much of the day.",
    "dogs.txt": "Dogs are loyal companions descended from wolves; they need walks and enjoy fetching balls.",
    "postgres.txt": "PostgreSQL is a relational database with MVCC, write-ahead logging and rich SQL support.",
    "sqlite.txt": "SQLite is an embedded SQL database engine stored in a single file on disk.",
    "rivers.txt": "Rivers carry fresh water from mountains to the sea, carving valleys over millennia.",
    "volcano.txt": "Volcanoes erupt molten lava and ash when magma rises through the earth's crust.",
    "bread.txt": "Baking sourdough bread needs flour, water, salt and a lively fermented starter.",
    "tennis.txt": "Tennis players serve and volley on grass, clay or hard courts in a match of sets.",
    "jazz.txt": "Jazz musicians improvise over chord changes, swing rhythms and blue notes.",
    "rockets.txt": "Rockets reach orbit by burning propellant and expelling exhaust at high velocity.",
    "vectors.txt": "Vector databases index embeddings for nearest-neighbour search by cosine similarity.",
    "tea.txt": "Green tea is brewed from unoxidised leaves at a lower temperature than black tea.",
}
QUERIES = ["pets that purr", "which database lives in one file", "baking with yeast", "space travel", "music"]
K = 5


def test_cloud_and_local_semantic_search_agree(
    gateway: Gateway, account: Account, device_factory: Callable[..., Device]
) -> None:
    dev = device_factory("searcher")
    dev.sign_in(gateway, account.email, account.password)
    for name, text in DOCS.items():
        dev.add(text, name)
    dev.wait_idle()
    assert dev.sync()["pushed"] == len(DOCS)
    remote = dev.sv.sync.remote
    assert remote is not None
    embedder = dev.sv.embedding.embedder
    with dev.sv.store.read() as c:
        rows = c.execute(
            "SELECT c.document_id, c.ordinal, e.vector FROM chunks c JOIN embeddings e ON e.chunk_id = c.id "
            "WHERE e.model_id = ?",
            (embedder.model_id,),
        ).fetchall()
    keys = [(str(d), int(o)) for d, o, _ in rows]
    matrix = np.stack([np.frombuffer(v, dtype="<f4") for _, _, v in rows])
    for query in QUERIES:
        qvec = np.asarray(embedder.embed_query(query), dtype=np.float32)
        cloud = remote.match_chunks(qvec.tolist(), count=K)
        cloud_top = [(m.document_id, m.ordinal) for m in cloud]
        local = dev.sv.search.search(SearchRequest(query, mode="semantic", k=K, use_cache=False))["hits"]
        local_top = [(h["document_id"], h["ordinal"]) for h in local]
        sims = matrix @ qvec
        exact = [keys[i] for i in np.argsort(-sims, kind="stable")[:K]]
        assert cloud_top == local_top == exact, query
        for m, i in zip(cloud, np.argsort(-sims, kind="stable")[:K], strict=True):
            assert abs(m.similarity - float(sims[i])) < 1e-4

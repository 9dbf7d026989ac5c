"""The real int8 model: golden vectors, bucketing, concurrency, query priority, bad inputs."""

from __future__ import annotations

import threading
from itertools import combinations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backend.embed.errors import EmbedInputInvalid, ModelNotReady
from backend.embed.onnx_embedder import OnnxEmbedder
from backend.embed.protocol import Embedder
from tests.embed.helpers import load_golden, one_by_one, variant
from tests.helpers.held_session import LIVENESS_S, HeldSession

GOLDEN = load_golden()
REF = np.asarray(GOLDEN["vectors"], dtype=np.float32)

# First 8 dimensions of the fp32 reference (sentence-transformers 6.2.0, torch 2.14.1), copied
# from golden_minilm.json so a reader sees real numbers here. int8 weights move single
# dimensions by up to ~0.009 on these sentences; 0.02 leaves margin and still catches a wrong
# pooling, a missing normalisation or a shuffled output (those move dims by ~0.05-0.5).
FIRST8 = {
    0: [
        0.0216641,
        -0.0048642,
        -0.0096492,
        -0.0634013,
        -0.1674935,
        0.0046764,
        0.0805998,
        -0.0241421,
    ],
    2: [0.0452458, -0.0135803, 0.0693595, 0.0379881, -0.0178093, 0.0210272, -0.061489, 0.0509692],
    4: [0.0425478, -0.0032521, -0.0400626, 0.0817543, -0.0801795, 0.0399457, 0.0576309, -0.0284994],
}


def test_reference_first8_match_fixture() -> None:
    for i, dims in FIRST8.items():
        np.testing.assert_allclose(REF[i, :8], dims, atol=1e-7)


def test_golden_vectors(onnx_embedder: OnnxEmbedder) -> None:
    vecs = onnx_embedder.embed(GOLDEN["sentences"])
    assert vecs.shape == (len(GOLDEN["sentences"]), 384) and vecs.dtype == np.float32
    cos = (vecs * REF).sum(axis=1)
    assert (cos >= 0.99).all(), cos
    for i, dims in FIRST8.items():
        np.testing.assert_allclose(vecs[i, :8], dims, atol=0.02)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)


def test_paraphrases_score_higher_than_unrelated(onnx_embedder: OnnxEmbedder) -> None:
    vecs = onnx_embedder.embed(GOLDEN["sentences"][:6])
    sim = vecs @ vecs.T
    pairs = {tuple(p) for p in GOLDEN["paraphrases"]}
    unrelated = [sim[i, j] for i, j in combinations(range(6), 2) if (i, j) not in pairs]
    for i, j in pairs:
        assert sim[i, j] > max(unrelated), (i, j, sim[i, j], max(unrelated))


def test_truncates_at_max_tokens(onnx_embedder: OnnxEmbedder) -> None:
    long_text = GOLDEN["sentences"][-1]
    assert onnx_embedder.count_tokens([long_text]) == [256]
    tail_changed = long_text + " Completely different words about cooking pasta." * 20
    a, b = onnx_embedder.embed([long_text, tail_changed])
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_is_an_embedder(onnx_embedder: OnnxEmbedder) -> None:
    assert isinstance(onnx_embedder, Embedder)
    assert (onnx_embedder.model_id, onnx_embedder.dim, onnx_embedder.max_tokens) == (
        "all-MiniLM-L6-v2-int8",
        384,
        256,
    )


WORDS = ["index", "vacuum", "the", "of", "PostgreSQL", "table", "résumé", "日本", "x", "42", "!"]
texts_strategy = st.lists(
    st.lists(st.sampled_from(WORDS), min_size=0, max_size=320).map(" ".join),
    min_size=0,
    max_size=12,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=texts_strategy, budget=st.integers(min_value=1, max_value=2048))
def test_bucketing_keeps_order_and_matches_per_item(onnx_embedder: OnnxEmbedder, texts: list[str], budget: int) -> None:
    emb = variant(onnx_embedder, token_budget=budget, max_batch_size=8)
    bulk = emb.embed(texts)
    assert bulk.shape == (len(texts), 384)
    np.testing.assert_allclose(bulk, one_by_one(emb, texts), atol=1e-4)


def test_threads_embedding_at_once_get_their_own_results(onnx_embedder: OnnxEmbedder) -> None:
    sentences = GOLDEN["sentences"]
    jobs = [[sentences[(k + i) % len(sentences)] for i in range(k % 4 + 1)] for k in range(12)]
    expected = [one_by_one(onnx_embedder, job) for job in jobs]
    results: dict[int, np.ndarray] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(jobs))

    def work(k: int) -> None:
        try:
            barrier.wait()
            if k % 3 == 0:
                results[k] = np.stack([onnx_embedder.embed_query(t) for t in jobs[k]])
            else:
                results[k] = onnx_embedder.embed(jobs[k])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,), name=f"t-embed-{k}") for k in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for k in range(len(jobs)):
        np.testing.assert_allclose(results[k], expected[k], atol=1e-4)


def test_query_runs_while_a_bulk_batch_is_inside_the_model(onnx_embedder: OnnxEmbedder) -> None:
    """A query never waits for a bulk batch: it completes while a batch is held inside the
    model run, and the bulk embed then finishes with correct vectors."""
    bulk_thread_name = "t-bulk"
    held = HeldSession(onnx_embedder._session, lambda: threading.current_thread().name == bulk_thread_name)
    emb = variant(onnx_embedder, token_budget=64, max_batch_size=1)
    emb._session = held
    bulk_texts = [f"document number {i} about write-ahead logging" for i in range(6)]
    result: dict[str, np.ndarray] = {}

    def bulk() -> None:
        result["bulk"] = emb.embed(bulk_texts)

    bulk_thread = threading.Thread(target=bulk, name=bulk_thread_name)
    bulk_thread.start()
    try:
        assert held.entered.wait(LIVENESS_S)
        q = emb.embed_query("how do I vacuum a table")  # returns while the batch is still held
        assert held.inside == 1 and emb.gate.bulk_busy and "bulk" not in result
    finally:
        held.release()
        bulk_thread.join()
    np.testing.assert_allclose(q, onnx_embedder.embed(["how do I vacuum a table"])[0], atol=1e-5)
    np.testing.assert_allclose(result["bulk"], onnx_embedder.embed(bulk_texts), atol=1e-5)


def test_embed_query_matches_embed_and_is_cached(onnx_embedder: OnnxEmbedder) -> None:
    emb = variant(onnx_embedder, token_budget=8192)
    emb.cache = type(onnx_embedder.cache)(4)
    q = emb.embed_query("create index concurrently")
    np.testing.assert_allclose(q, emb.embed(["create index concurrently"])[0], atol=1e-6)
    assert emb.cache.misses == 1
    q2 = emb.embed_query("create index concurrently")
    assert emb.cache.hits == 1
    np.testing.assert_array_equal(q, q2)
    q2[:] = 0  # the caller's copy; the cached vector is untouched
    np.testing.assert_array_equal(emb.embed_query("create index concurrently"), q)


def test_empty_input_and_edge_texts(onnx_embedder: OnnxEmbedder) -> None:
    assert onnx_embedder.embed([]).shape == (0, 384)
    vecs = onnx_embedder.embed(["", " ", "\x00", "a" * 10_000, "🙂" * 300, " \n\t " * 1000])
    assert np.isfinite(vecs).all()
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("bad", ["a string", b"bytes", None, 42, ["ok", None], ["ok", b"x"]])
def test_bad_inputs_are_rejected(onnx_embedder: OnnxEmbedder, bad: object) -> None:
    with pytest.raises(EmbedInputInvalid) as info:
        onnx_embedder.embed(bad)  # type: ignore[arg-type]
    assert info.value.status == 422


def test_lone_surrogate_is_a_bad_input_not_a_crash(onnx_embedder: OnnxEmbedder) -> None:
    with pytest.raises(EmbedInputInvalid):
        onnx_embedder.embed(["ok", "broken \ud800 text"])
    with pytest.raises(EmbedInputInvalid):
        onnx_embedder.embed_query(123)  # type: ignore[arg-type]


def test_progress_reports_every_batch(onnx_embedder: OnnxEmbedder) -> None:
    emb = variant(onnx_embedder, token_budget=32, max_batch_size=2)
    seen: list[tuple[int, int]] = []
    emb.embed(["one", "two", "three", "four", "five"], on_progress=lambda d, t: seen.append((d, t)))
    assert seen == [(2, 5), (4, 5), (5, 5)]


def test_closed_embedder_refuses(onnx_embedder: OnnxEmbedder) -> None:
    emb = variant(onnx_embedder, token_budget=8192)
    emb.close()
    with pytest.raises(ModelNotReady):
        emb.embed(["x"])
    with pytest.raises(ModelNotReady):
        emb.embed_query("x")

"""Model-id tagging, the index guard, and the registry that switches models atomically."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from backend.embed.errors import EmbedderMismatch, ModelNotReady, ModelUnknown
from backend.embed.onnx_embedder import OnnxEmbedder
from backend.embed.service import EmbedConfig, EmbeddingService
from backend.embed.switching import (
    EmbedderRegistry,
    Fixed,
    TaggedVectors,
    embed_tagged,
    ensure_compatible,
)
from tests.embed.conftest import ModelFiles
from tests.embed.helpers import variant


def test_vectors_are_tagged_with_the_model_that_made_them(onnx_embedder: OnnxEmbedder) -> None:
    tv = embed_tagged(onnx_embedder, ["alpha", "beta"])
    assert tv.model_id == "all-MiniLM-L6-v2-int8" and tv.dim == 384 and len(tv) == 2
    other = embed_tagged(variant(onnx_embedder, model_id="minilm-b"), ["alpha"])
    assert other.model_id == "minilm-b"
    with pytest.raises(ValueError):
        tv.vectors[0, 0] = 1.0  # read-only: a tag cannot drift from its vectors
    blobs = tv.blobs()
    assert [len(b) for b in blobs] == [384 * 4, 384 * 4]
    np.testing.assert_array_equal(np.frombuffer(blobs[1], dtype="<f4"), tv.vectors[1])


def test_blobs_are_little_endian_whatever_the_input_order() -> None:
    big = np.array([[1.0, -2.5]], dtype=">f4")
    tv = TaggedVectors("m", big)
    assert tv.blobs()[0] == np.array([1.0, -2.5], dtype="<f4").tobytes()


def test_index_guard(onnx_embedder: OnnxEmbedder) -> None:
    assert ensure_compatible(onnx_embedder, model_id="all-MiniLM-L6-v2-int8", dim=384)
    with pytest.raises(EmbedderMismatch, match="cannot serve the index of other-model") as info:
        ensure_compatible(onnx_embedder, model_id="other-model", dim=384)
    assert info.value.status == 409
    with pytest.raises(EmbedderMismatch, match="768-d"):
        ensure_compatible(onnx_embedder, model_id="all-MiniLM-L6-v2-int8", dim=768)


def test_shadow_build_then_switch(onnx_embedder: OnnxEmbedder, model_files: ModelFiles) -> None:
    reg = EmbedderRegistry()
    with pytest.raises(ModelNotReady):
        reg.active()
    reg.register(Fixed(variant(onnx_embedder, model_id="model-a")))
    reg.set_active("model-a")
    # B is the real service, still loading when the build starts: A keeps answering.
    svc = EmbeddingService(EmbedConfig(models_dir=model_files.models_dir, threads=1))
    reg.register(svc)
    reg.begin_build("all-MiniLM-L6-v2-int8")
    assert reg.write_targets() == ["model-a", "all-MiniLM-L6-v2-int8"]
    with pytest.raises(ModelNotReady):
        reg.get("all-MiniLM-L6-v2-int8")
    assert embed_tagged(reg.active(), ["q"]).model_id == "model-a"
    svc.start()
    assert svc.wait_ready(60)
    assert embed_tagged(reg.get("all-MiniLM-L6-v2-int8"), ["doc"]).model_id == svc.model_id
    assert reg.finish_build() == "model-a"
    assert reg.active_id == "all-MiniLM-L6-v2-int8" and reg.building_id is None
    assert reg.write_targets() == ["all-MiniLM-L6-v2-int8"]
    assert reg.for_index("all-MiniLM-L6-v2-int8", 384) is svc.embedder
    reg.retire("model-a")
    with pytest.raises(ModelUnknown):
        reg.get("model-a")
    with pytest.raises(ValueError, match="still in use"):
        reg.retire("all-MiniLM-L6-v2-int8")
    svc.stop()


def test_registry_refuses_invalid_transitions(onnx_embedder: OnnxEmbedder) -> None:
    reg = EmbedderRegistry()
    with pytest.raises(ModelUnknown):
        reg.set_active("nope")
    reg.register(Fixed(variant(onnx_embedder, model_id="a")))
    reg.register(Fixed(variant(onnx_embedder, model_id="b")))
    reg.register(Fixed(variant(onnx_embedder, model_id="c")))
    reg.set_active("a")
    with pytest.raises(ValueError, match="already the active"):
        reg.begin_build("a")
    with pytest.raises(ValueError, match="no model is being built"):
        reg.finish_build()
    reg.begin_build("b")
    with pytest.raises(ValueError, match="already in progress"):
        reg.begin_build("c")
    reg.cancel_build()
    assert reg.write_targets() == ["a"] and reg.active_id == "a"


def test_switch_under_concurrent_queries_is_atomic(onnx_embedder: OnnxEmbedder) -> None:
    """Readers keep querying while the switch happens: every answer is tagged with the model
    that produced it, no query fails, and no reader goes back to A after seeing B."""
    reg = EmbedderRegistry()
    for mid in ("model-a", "model-b"):
        reg.register(Fixed(variant(onnx_embedder, model_id=mid)))
    reg.set_active("model-a")
    reg.begin_build("model-b")
    seen: dict[int, list[str]] = {k: [] for k in range(4)}
    errors: list[BaseException] = []
    stop = threading.Event()
    lock = threading.Lock()

    def reader(k: int) -> None:
        try:
            while not stop.is_set():
                emb = reg.active()
                tv = embed_tagged(emb, [f"query {k}"])
                assert tv.model_id == emb.model_id
                with lock:
                    seen[k].append(tv.model_id)
        except BaseException as exc:
            errors.append(exc)

    def wait_for(pred: object) -> None:
        while not pred() and not errors:  # type: ignore[operator]
            stop.wait(0.001)

    threads = [threading.Thread(target=reader, args=(k,), name=f"t-reader-{k}") for k in range(4)]
    for t in threads:
        t.start()
    wait_for(lambda: all(seen[k] for k in seen))
    reg.finish_build()
    wait_for(lambda: all("model-b" in seen[k] for k in seen))
    stop.set()
    for t in threads:
        t.join()
    assert not errors
    for ids in seen.values():
        first_b = ids.index("model-b")
        assert set(ids[:first_b]) == {"model-a"} and set(ids[first_b:]) == {"model-b"}

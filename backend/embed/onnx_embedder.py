"""The local embedder: all-MiniLM-L6-v2 (int8 ONNX) on onnxruntime's CPU provider.

Pipeline per call: tokenize (truncation at ``max_tokens``) → plan batches by token length under
a token budget (:mod:`backend.embed.batching`) → per batch: pad to the batch's longest input,
run the session (one turn of the :class:`~backend.embed.gate.TurnGate`) → masked mean pooling
and L2 normalisation (:mod:`backend.embed.pooling`) → results back in input order.

Session options: ``ORT_ENABLE_ALL``, sequential execution, ``inter_op_num_threads=1``,
``intra_op_num_threads`` from the caller (default: physical cores), CPU provider only, and
``session.intra_op.allow_spinning = "0"`` by default: with spinning on, the intra-op workers
busy-wait after each run and burn CPU on an idle laptop (``make bench`` measures both).

Threads: onnxruntime owns a native intra-op pool per session (freed with the session) and
tokenizers a native rayon pool for ``encode_batch``; neither runs Python code. Construction has
no side effects; :meth:`OnnxEmbedder.load` reads, verifies and loads the files.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import psutil
from tokenizers import Encoding, Tokenizer

from backend.embed.batching import Batch, plan_batches, scatter
from backend.embed.errors import EmbedInputInvalid, ModelLoadFailed, ModelNotReady
from backend.embed.gate import TurnGate
from backend.embed.manifest import ModelManifest
from backend.embed.pooling import l2_normalize, mean_pool
from backend.embed.query_cache import QueryCache
from backend.embed.tokenizer import truncating_copy
from backend.embed.verify import read_verified

DEFAULT_TOKEN_BUDGET = 1024
"""Padded tokens per model run (~5 chunks of 200 tokens, ~50 short queries). Measured on the
2-vCPU build machine (300 PostgreSQL-docs chunks, 2 threads): peak RSS 369 MB at 1024 vs
1176 MB at 8192 (attention buffers grow with batch x length^2), and 20 % more tokens per
CPU-second; smaller batches gain little more (3.2-3.6k vs 3.1k tokens/CPU-s) and cost
per-run overhead on short texts."""
DEFAULT_MAX_BATCH_SIZE = 128
Progress = Callable[[int, int], None]
BatchObserver = Callable[[str, int, int, float], object]
"""Told after each model run: lane (``query`` or ``bulk``), texts, tokens (padding excluded),
seconds of the run (model + pooling; not the wait for the lane's turn)."""


def default_threads() -> int:
    """Physical cores (psutil), falling back to logical cores, at least 1."""
    return psutil.cpu_count(logical=False) or psutil.cpu_count(logical=True) or 1


def session_options(threads: int, *, allow_spinning: bool = False) -> ort.SessionOptions:
    """The onnxruntime options the embedder uses (exposed for the benchmark)."""
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3  # errors only; warnings would go to the sidecar's stderr
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if allow_spinning else "0")
    so.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return so


def check_texts(texts: Sequence[str]) -> list[str]:
    """``texts`` as a list, or :class:`EmbedInputInvalid` naming the first bad element."""
    if isinstance(texts, str | bytes) or not isinstance(texts, Sequence):
        raise EmbedInputInvalid(f"texts must be a sequence of strings, got {type(texts).__name__}")
    out = list(texts)
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise EmbedInputInvalid(f"texts[{i}] must be a string, got {type(t).__name__}", detail={"index": i})
    return out


class OnnxEmbedder:
    """Implements :class:`~backend.embed.protocol.Embedder` with onnxruntime + tokenizers."""

    def __init__(
        self,
        *,
        model_id: str,
        dim: int,
        max_tokens: int,
        session: ort.InferenceSession,
        tokenizer: Tokenizer,
        input_names: Sequence[str],
        output_name: str,
        token_budget: int = DEFAULT_TOKEN_BUDGET,
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        cache: QueryCache | None = None,
        on_batch: BatchObserver | None = None,
    ) -> None:
        self._on_batch = on_batch
        self._model_id, self._dim, self._max_tokens = model_id, dim, max_tokens
        self._session, self._tokenizer = session, tokenizer
        self._inputs, self._output = tuple(input_names), output_name
        self.token_budget, self.max_batch_size = token_budget, max_batch_size
        self.cache = cache if cache is not None else QueryCache()
        self.gate = TurnGate()
        self._closed = threading.Event()

    @classmethod
    def load(
        cls,
        manifest: ModelManifest,
        model_dir: Path,
        *,
        threads: int | None = None,
        allow_spinning: bool = False,
        token_budget: int = DEFAULT_TOKEN_BUDGET,
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        query_cache_size: int = 256,
        should_stop: Callable[[], bool] = lambda: False,
        on_batch: BatchObserver | None = None,
    ) -> OnnxEmbedder:
        """Verify (size, sha256) and load the model files; the bytes hashed are the bytes used.

        ``should_stop`` is checked before each expensive step (a shutdown during start-up
        then waits for at most one step, not the whole load); it raises ``ModelNotReady``."""
        tok_bytes = read_verified(manifest, manifest.tokenizer_file, model_dir)
        _stop_if(should_stop, manifest)
        onnx_bytes = read_verified(manifest, manifest.onnx_file, model_dir)
        tokenizer = truncating_copy(tok_bytes, manifest.max_tokens)
        _stop_if(should_stop, manifest)
        opts = session_options(threads or default_threads(), allow_spinning=allow_spinning)
        try:
            session = ort.InferenceSession(onnx_bytes, sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise ModelLoadFailed(f"onnxruntime cannot load {model_dir / manifest.onnx_file.path}: {exc}") from exc
        _check_signature(session, manifest)
        return cls(
            model_id=manifest.id,
            dim=manifest.dim,
            max_tokens=manifest.max_tokens,
            session=session,
            tokenizer=tokenizer,
            input_names=manifest.onnx_inputs,
            output_name=manifest.onnx_output,
            token_budget=token_budget,
            max_batch_size=min(max_batch_size, manifest.max_batch_size or max_batch_size),
            cache=QueryCache(query_cache_size),
            on_batch=on_batch,
        )

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def max_tokens(self) -> int:
        return self._max_tokens

    @property
    def threads(self) -> int:
        opts = self._session.get_session_options()
        return int(opts.intra_op_num_threads)

    def close(self) -> None:
        """Refuse further calls (``ModelNotReady``); the session is freed with the object."""
        self._closed.set()

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Token counts after truncation, special tokens included (what the model sees)."""
        return [len(e.ids) for e in self._encode(check_texts(texts))]

    def embed(self, texts: Sequence[str], *, on_progress: Progress | None = None) -> npt.NDArray[np.float32]:
        """Embed ``texts`` → float32 [n, dim], L2-normalised, in input order.

        Runs batch by batch, yielding the model to a waiting ``embed_query`` between batches.
        ``on_progress(done, total)`` is called after each batch (ingest progress).
        """
        items = check_texts(texts)
        self._ensure_open()
        if not items:
            return np.empty((0, self._dim), dtype=np.float32)
        encodings = self._encode(items)
        plan = plan_batches([len(e.ids) for e in encodings], self.token_budget, self.max_batch_size)
        parts: list[tuple[Batch, npt.NDArray[np.float32]]] = []
        done = 0
        for batch in plan:
            parts.append((batch, self._run(encodings, batch, urgent=False)))
            done += len(batch.indices)
            if on_progress is not None:
                on_progress(done, len(items))
        return scatter(len(items), self._dim, parts)

    def embed_query(self, text: str) -> npt.NDArray[np.float32]:
        """Embed one query → float32 [dim]; cached (LRU) and served before pending bulk batches."""
        if not isinstance(text, str):
            raise EmbedInputInvalid(f"query must be a string, got {type(text).__name__}")
        self._ensure_open()
        hit = self.cache.get(text)
        if hit is not None:
            return hit.copy()
        encodings = self._encode([text])
        vec = self._run(encodings, Batch((0,), len(encodings[0].ids)), urgent=True)[0]
        return self.cache.put(text, vec).copy()

    def _ensure_open(self) -> None:
        if self._closed.is_set():
            raise ModelNotReady(f"embedder {self._model_id} is stopped")

    def _encode(self, items: list[str]) -> list[Encoding]:
        try:
            return self._tokenizer.encode_batch(items, add_special_tokens=True)
        except Exception as exc:  # e.g. lone surrogates cannot cross into Rust
            raise EmbedInputInvalid(f"text cannot be tokenized: {exc}") from exc

    def _run(self, encodings: Sequence[Encoding], batch: Batch, *, urgent: bool) -> npt.NDArray[np.float32]:
        ids, mask = pad_batch(encodings, batch)
        feeds: dict[str, Any] = {}
        for name in self._inputs:
            if name == "input_ids":
                feeds[name] = ids
            elif name == "attention_mask":
                feeds[name] = mask
            else:  # token_type_ids: single-sequence inputs are all segment 0
                feeds[name] = np.zeros_like(ids)
        with self.gate.turn(urgent=urgent):
            self._ensure_open()
            started = time.perf_counter()
            hidden = self._session.run([self._output], feeds)[0]
        vectors = l2_normalize(mean_pool(hidden, mask))
        if self._on_batch is not None:
            seconds = time.perf_counter() - started
            self._on_batch("query" if urgent else "bulk", len(batch.indices), int(mask.sum()), seconds)
        return vectors


def _stop_if(should_stop: Callable[[], bool], manifest: ModelManifest) -> None:
    if should_stop():
        raise ModelNotReady(f"loading {manifest.id} was stopped", detail={"model_id": manifest.id})


def pad_batch(encodings: Sequence[Encoding], batch: Batch) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """input_ids and attention_mask [len(batch), padded_len], right-padded with 0."""
    width = max(batch.padded_len, 1)
    ids = np.zeros((len(batch.indices), width), dtype=np.int64)
    mask = np.zeros_like(ids)
    for row, i in enumerate(batch.indices):
        seq = encodings[i].ids
        ids[row, : len(seq)] = seq
        mask[row, : len(seq)] = 1
    return ids, mask


def _check_signature(session: ort.InferenceSession, manifest: ModelManifest) -> None:
    have_in = {i.name for i in session.get_inputs()}
    outputs = {o.name: o for o in session.get_outputs()}
    problems = []
    if not set(manifest.onnx_inputs) <= have_in or not have_in <= set(manifest.onnx_inputs):
        problems.append(f"inputs {sorted(have_in)} != manifest {sorted(manifest.onnx_inputs)}")
    out = outputs.get(manifest.onnx_output)
    if out is None:
        problems.append(f"no output {manifest.onnx_output!r} (has {sorted(outputs)})")
    elif isinstance(out.shape[-1], int) and out.shape[-1] != manifest.dim:
        problems.append(f"output width {out.shape[-1]} != manifest dim {manifest.dim}")
    if problems:
        raise ModelLoadFailed(f"model {manifest.id} does not match its manifest: " + "; ".join(problems))

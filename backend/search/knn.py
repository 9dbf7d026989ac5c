"""Semantic retriever: coarse binary scan → oversampled candidates → exact float rescoring.

1. **Coarse.** The query vector's sign bits are compared by Hamming distance with every
   stored binary vector the filter allows (:class:`~backend.search.bitindex.BitMirror`, an
   in-memory copy of the model's vec0 ``bit[dim]`` table); the nearest
   ``max(k * coarse_oversample, min_coarse)`` are kept, and of those the
   ``max(k * oversample, min_candidates)`` with the best asymmetric score (float query against
   the stored sign bits) become candidates. When the filter allows at most that many chunks,
   all of them are candidates and the result is exact.
2. **Filter.** Filters are resolved against ``documents`` (same read snapshot) into a boolean
   mask over document rowids *before* the scan, so a filter never starves the candidate set:
   k hits come back whenever k matching chunks with vectors exist.
3. **Rescore.** The candidates' float32 vectors are read from ``embeddings`` (the same query
   re-checks the filter against ``documents``) and ranked by exact cosine similarity (vectors
   are L2-normalised, so a dot product).

If the mirror cannot be used (an unverified sqlite-vec storage layout), the coarse step falls
back to vec0's own KNN (``MATCH … AND k = ?``, at most 4096 candidates, post-filtered), and
to an exact scan of the filter's chunks when post-filtering leaves fewer than k.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

import apsw
import numpy as np
import numpy.typing as npt

from backend.search.bitindex import BitMirror, MirrorUnsupported
from backend.search.filters import SearchFilters
from backend.store import vectors as vector_repo
from backend.store.vectors import VectorIndex

log = logging.getLogger("docsidecar.search")

VEC0_K_MAX = 4096
FloatVec = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class KnnConfig:
    """Candidate counts per requested hit (chosen from the recall sweep in bench_search.py)."""

    coarse_oversample: int = 100
    """Hamming-nearest rows kept per requested hit..."""
    min_coarse: int = 1000
    """... and at least this many."""
    oversample: int = 10
    """Of those, rows rescored with the exact float vectors per requested hit (picked by the
    asymmetric float-query x sign-bits score)..."""
    min_candidates: int = 100
    """... and at least this many."""
    max_candidates: int = 20_000


@dataclass(slots=True)
class KnnStats:
    path: str = "mirror"
    candidates: int = 0
    eligible: int = 0
    blocks_loaded: int = 0
    timings_ms: dict[str, float] = field(default_factory=dict)


def n_candidates(k: int, config: KnnConfig, depth: int = 0) -> tuple[int, int]:
    """(coarse, exact) candidate counts for ``k`` wanted hits (``depth`` results needed in all,
    e.g. for fusion)."""
    exact = min(config.max_candidates, max(k * config.oversample, config.min_candidates, depth))
    coarse = min(config.max_candidates, max(k * config.coarse_oversample, config.min_coarse, exact))
    return int(coarse), int(exact)


def allowed_documents(conn: apsw.Connection, filters: SearchFilters) -> npt.NDArray[np.bool_]:
    """Boolean mask indexed by ``documents.rowid``: True where the document passes ``filters``."""
    pred, params = filters.predicate()
    rowids = np.fromiter(
        (int(r[0]) for r in conn.execute(f"SELECT d.rowid FROM documents d WHERE {pred}", params)),  # noqa: S608
        dtype=np.int64,
    )
    mask = np.zeros(int(rowids.max()) + 1 if rowids.size else 1, dtype=bool)
    mask[rowids] = True
    return mask


def rescore(
    conn: apsw.Connection,
    model_id: str,
    dim: int,
    query: FloatVec,
    chunk_ids: npt.NDArray[np.int64],
    filters: SearchFilters,
    k: int,
) -> list[tuple[int, float]]:
    """Exact cosine of ``query`` with the stored vectors of ``chunk_ids`` that still exist and
    pass ``filters``; the best ``k``, best first (ties by chunk id)."""
    if not chunk_ids.size or k <= 0:
        return []
    ids_json = json.dumps(chunk_ids.tolist())
    if filters.empty:
        sql = (
            "SELECT chunk_id, vector FROM embeddings WHERE model_id = ? "
            "AND chunk_id IN (SELECT value FROM json_each(?))"
        )
        params: list[object] = [model_id, ids_json]
    else:
        pred, pred_params = filters.predicate()
        sql = (
            "SELECT e.chunk_id, e.vector FROM embeddings e JOIN chunks c ON c.id = e.chunk_id "  # noqa: S608
            "JOIN documents d ON d.id = c.document_id WHERE e.model_id = ? "
            f"AND e.chunk_id IN (SELECT value FROM json_each(?)) AND {pred}"
        )
        params = [model_id, ids_json, *pred_params]
    rows = conn.execute(sql, params).fetchall()
    return exact_top(rows, dim, query, k)


def exact_top(rows: list[Any], dim: int, query: FloatVec, k: int) -> list[tuple[int, float]]:
    """The best ``k`` of ``rows`` (``(chunk_id, float32 blob)``) by dot product with ``query``."""
    if not rows:
        return []
    ids = np.fromiter((int(r[0]) for r in rows), dtype=np.int64, count=len(rows))
    matrix = vector_repo.from_blobs([bytes(r[1]) for r in rows], dim)
    sims = matrix @ query
    order = np.lexsort((ids, -sims))[:k]
    return [(int(ids[i]), float(sims[i])) for i in order]


class SemanticIndex:
    """Holds one :class:`BitMirror` per vec0 table and answers KNN queries."""

    def __init__(self, config: KnnConfig | None = None) -> None:
        self.config = config or KnnConfig()
        self._lock = threading.Lock()
        self._mirrors: dict[str, BitMirror] = {}
        self._unsupported: set[str] = set()

    def mirror(self, index: VectorIndex) -> BitMirror | None:
        with self._lock:
            if index.table in self._unsupported:
                return None
            m = self._mirrors.get(index.table)
            if m is None or m.dim != index.dim:
                m = self._mirrors[index.table] = BitMirror(index.table, index.dim)
            for table in [t for t in self._mirrors if t != index.table]:
                del self._mirrors[table]  # a retired model's index: free its memory
            return m

    def _give_up_mirror(self, table: str, exc: Exception) -> None:
        log.warning("binary mirror of %s unavailable, using vec0 KNN: %s", table, exc)
        with self._lock:
            self._unsupported.add(table)
            self._mirrors.pop(table, None)

    def warm(self, conn: apsw.Connection, index: VectorIndex) -> int:
        """Load the mirror of ``index`` (start-up); returns blocks loaded."""
        m = self.mirror(index)
        if m is None:
            return 0
        try:
            return m.sync(conn, vector_repo.read_epoch(conn))
        except MirrorUnsupported as exc:
            self._give_up_mirror(index.table, exc)
            return 0

    def search(
        self,
        conn: apsw.Connection,
        index: VectorIndex,
        query: FloatVec,
        k: int,
        filters: SearchFilters,
        stats: KnnStats | None = None,
        *,
        precise: int | None = None,
    ) -> list[tuple[int, float]]:
        """The ``k`` chunks most similar to ``query`` (unit float32 of ``index.dim``) passing
        ``filters``, as ``(chunk_id, cosine)``, best first. Runs inside ``conn``'s snapshot.

        ``precise`` (default ``k``) is how many of the best hits the oversampling is sized for:
        hybrid search asks for a deeper list to fuse but needs only its head to be exact."""
        stats = stats if stats is not None else KnnStats()
        if k <= 0:
            return []
        q = vector_repo.check_vector(query, index.dim)
        coarse, want = n_candidates(k if precise is None else min(precise, k), self.config, k)
        mirror = self.mirror(index)
        if mirror is not None:
            try:
                stats.blocks_loaded = mirror.sync(conn, vector_repo.read_epoch(conn))
            except MirrorUnsupported as exc:
                self._give_up_mirror(index.table, exc)
                mirror = None
        if mirror is None:
            return self._vec0_search(conn, index, q, k, filters, 4 * want, stats)
        allowed = None if filters.empty else allowed_documents(conn, filters)
        cands, eligible = mirror.candidates(vector_repo.quantize(q), coarse, allowed, refine=(q, want))
        stats.candidates, stats.eligible = int(cands.size), eligible
        hits = rescore(conn, index.model_id, index.dim, q, cands, filters, k)
        if len(hits) < min(k, eligible) and cands.size < eligible:
            # the mirror disagreed with the snapshot (a concurrent change): be exact instead
            stats.path = "exact-fallback"
            return self._exact(conn, index, q, k, filters)
        return hits

    def _vec0_search(
        self,
        conn: apsw.Connection,
        index: VectorIndex,
        q: FloatVec,
        k: int,
        filters: SearchFilters,
        want: int,
        stats: KnnStats,
    ) -> list[tuple[int, float]]:
        stats.path = "vec0"
        kk = min(VEC0_K_MAX, want)
        rows: list[Any] = conn.execute(
            f"SELECT chunk_id FROM {index.table} WHERE embedding MATCH vec_bit(?) AND k = ?",  # noqa: S608
            (vector_repo.quantize(q).tobytes(), kk),
        ).fetchall()
        cands = np.asarray([int(r[0]) for r in rows], dtype=np.int64)
        stats.candidates = int(cands.size)
        hits = rescore(conn, index.model_id, index.dim, q, cands, filters, k)
        if len(hits) < k and cands.size == kk:
            stats.path = "vec0+exact"
            return self._exact(conn, index, q, k, filters)
        return hits

    @staticmethod
    def _exact(
        conn: apsw.Connection, index: VectorIndex, q: FloatVec, k: int, filters: SearchFilters
    ) -> list[tuple[int, float]]:
        pred, params = filters.predicate()
        rows = conn.execute(
            "SELECT e.chunk_id, e.vector FROM embeddings e JOIN chunks c ON c.id = e.chunk_id "  # noqa: S608
            f"JOIN documents d ON d.id = c.document_id WHERE e.model_id = ? AND {pred}",
            [index.model_id, *params],
        ).fetchall()
        return exact_top(rows, index.dim, q, k)

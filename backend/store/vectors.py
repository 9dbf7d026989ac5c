"""Vector repository: canonical float32 ``embeddings`` rows and their derived ``vec0`` indexes.

Canonical data: ``embeddings(chunk_id, model_id, vector)`` — little-endian float32, L2-normalised.
Derived data: one ``vec0`` table per model (``vector_indexes`` names it) holding a *binary*
quantised copy of every vector (``bit[dim]``: one sign bit per dimension, 48 bytes at 384-d)
plus three metadata columns mirrored from the chunk's document so a KNN query can filter inside
the scan (sqlite-vec metadata columns; NULL is not allowed there, hence the ``coalesce``):

=============  ==========================================================
``scope``      ``documents.scope``
``mime``       ``coalesce(documents.mime, '')``
``modified_at`` ``coalesce(documents.mtime_ns / 1e9, documents.created_at)`` (unix seconds)
=============  ==========================================================

The search keeps an in-memory copy of the binary vectors, read from this table's shadow tables
(:mod:`backend.search.bitindex`), for a coarse Hamming scan and rescores the candidates exactly
with the float vectors (:mod:`backend.search.knn`). Search filters are evaluated against
``documents`` itself, never against the metadata columns (which only serve vec0's own KNN).
Creating or rebuilding a vec0 table bumps the index epoch (:data:`EPOCH_KEY`) so the
in-memory copy starts over.

Every writer function takes the writer connection and runs inside the caller's transaction; the
caller also calls :func:`bump_generation` in every transaction that changes chunks or vectors
(the search result cache is keyed by it). Read functions take a reader connection.

sqlite-vec 0.1.9 cannot ``UPDATE`` metadata columns of a ``bit[]`` table (it re-validates the
vector as float32), so metadata changes delete and re-insert the rows from the canonical blobs.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import apsw
import numpy as np
import numpy.typing as npt

from backend.errors import SidecarError, Unavailable
from backend.store import kv

DEFAULT_MODEL_ID = "all-MiniLM-L6-v2-int8"
ACTIVE_MODEL_KEY = "search.active_model"
GENERATION_KEY = "search.index_generation"
EPOCH_KEY = "search.index_epoch"
MODIFIED_AT_SQL = "coalesce(d.mtime_ns / 1e9, d.created_at)"
"""The document time that ``modified_after``/``modified_before`` filter on (alias ``d``)."""
NORM_TOLERANCE = 1e-3
_TABLE = re.compile(r"^vec_chunks_[0-9]+$")
_BATCH = 500

FloatVec = npt.NDArray[np.float32]
Bits = npt.NDArray[np.uint8]


class VectorIndexError(SidecarError):
    """The vector index is inconsistent with the request (wrong dimension, bad table name)."""

    code = "vector_index_error"


class VectorRejected(VectorIndexError):
    """A vector is not a finite, L2-normalised float32 array of the index dimension."""

    code = "vector_rejected"


class VectorIndexMissing(Unavailable):
    """No vector index exists for the requested or active model."""

    code = "vector_index_missing"


@dataclass(frozen=True, slots=True)
class VectorIndex:
    model_id: str
    table: str
    dim: int
    state: str


# -- pure helpers ----------------------------------------------------------------------------
def quantize(vectors: npt.ArrayLike) -> Bits:
    """Sign bits of ``vectors`` (shape ``[n, dim]`` or ``[dim]``), packed 8 per byte.

    The same function quantises stored vectors and queries, so the bit order (numpy's default,
    most significant bit first) only has to be consistent, which Hamming distance is.
    """
    arr = np.asarray(vectors, dtype=np.float32)
    return np.packbits(arr > 0, axis=-1)


def to_blob(vector: npt.ArrayLike) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


def from_blobs(blobs: Sequence[bytes], dim: int) -> FloatVec:
    """Stack little-endian float32 blobs into a ``[n, dim]`` float32 matrix."""
    if not blobs:
        return np.empty((0, dim), dtype=np.float32)
    flat = np.frombuffer(b"".join(blobs), dtype="<f4")
    return flat.reshape(len(blobs), dim).astype(np.float32, copy=False)


def check_vector(vector: npt.ArrayLike, dim: int) -> FloatVec:
    """``vector`` as float32 if it is finite, ``[dim]``-shaped and unit-length; else raise."""
    arr = np.asarray(vector, dtype=np.float32)
    if arr.shape != (dim,):
        raise VectorRejected(f"vector has shape {arr.shape}, the index wants ({dim},)")
    if not np.all(np.isfinite(arr)):
        raise VectorRejected("vector contains NaN or infinity")
    norm = float(np.linalg.norm(arr))
    if abs(norm - 1.0) > NORM_TOLERANCE:
        raise VectorRejected(f"vector is not L2-normalised (norm {norm:.4f})")
    return arr


def _table(name: str) -> str:
    if not _TABLE.match(name):
        raise VectorIndexError(f"refusing to use {name!r} as a vector table name")
    return name


# -- registry --------------------------------------------------------------------------------
def list_indexes(conn: apsw.Connection) -> list[VectorIndex]:
    rows = conn.execute("SELECT model_id, table_name, dim, state FROM vector_indexes ORDER BY created_at")
    return [VectorIndex(str(m), _table(str(t)), int(d), str(s)) for m, t, d, s in rows]


def get_index(conn: apsw.Connection, model_id: str) -> VectorIndex | None:
    row = conn.execute(
        "SELECT model_id, table_name, dim, state FROM vector_indexes WHERE model_id = ?",
        (model_id,),
    ).fetchone()
    if row is None:
        return None
    return VectorIndex(str(row[0]), _table(str(row[1])), int(row[2]), str(row[3]))


def _create_table(conn: apsw.Connection, table: str, dim: int) -> None:
    if dim <= 0 or dim % 8:
        raise VectorIndexError(f"a binary index needs a positive dimension divisible by 8: {dim}")
    conn.execute(
        f"CREATE VIRTUAL TABLE IF NOT EXISTS {_table(table)} USING vec0("
        f" chunk_id INTEGER PRIMARY KEY, embedding bit[{dim}],"
        " scope TEXT, mime TEXT, modified_at FLOAT)"
    )
    kv.increment(conn, EPOCH_KEY)


def _table_exists(conn: apsw.Connection, table: str) -> bool:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone()
    return row is not None


def ensure_index(conn: apsw.Connection, model_id: str, dim: int) -> str:
    """The vec0 table of ``model_id``, created (with its registry row) if missing.

    A newly registered model starts in state ``building``; the model switch marks it
    ``ready`` (:func:`set_index_state`). Raises :class:`VectorIndexError` when the model is
    registered with another dimension.
    """
    index = get_index(conn, model_id)
    if index is not None:
        if index.dim != dim:
            raise VectorIndexError(
                f"model {model_id} is indexed with dimension {index.dim}, not {dim}",
                detail={"model_id": model_id, "dim": index.dim},
            )
        if not _table_exists(conn, index.table):
            _create_table(conn, index.table, dim)
        return index.table
    taken = [int(t.table.rsplit("_", 1)[1]) for t in list_indexes(conn)]
    table = f"vec_chunks_{max(taken, default=0) + 1}"
    _create_table(conn, table, dim)
    conn.execute(
        "INSERT INTO vector_indexes(model_id, table_name, dim, state, created_at) VALUES (?, ?, ?, 'building', ?)",
        (model_id, table, dim, time.time()),
    )
    return table


def set_index_state(conn: apsw.Connection, model_id: str, state: str) -> None:
    conn.execute("UPDATE vector_indexes SET state = ? WHERE model_id = ?", (state, model_id))


def set_active_model(conn: apsw.Connection, model_id: str) -> None:
    """Make ``model_id`` the model semantic search queries (its index must exist)."""
    if get_index(conn, model_id) is None:
        raise VectorIndexMissing(f"no vector index for model {model_id}")
    kv.put(conn, ACTIVE_MODEL_KEY, model_id)


def active_model(conn: apsw.Connection) -> VectorIndex | None:
    """The index semantic search uses: the kv choice, else the default model's, else the
    oldest ``ready`` index; ``None`` when there is none."""
    chosen = kv.get(conn, ACTIVE_MODEL_KEY)
    for model_id in (chosen, DEFAULT_MODEL_ID):
        if model_id:
            index = get_index(conn, model_id)
            if index is not None and index.state != "retired":
                return index
    ready = [i for i in list_indexes(conn) if i.state == "ready"]
    return ready[0] if ready else None


# -- generation counter ----------------------------------------------------------------------
def bump_generation(conn: apsw.Connection) -> int:
    """Mark the index as changed (drops cached search results); call it in every write
    transaction that changes chunks, vectors or the document fields search filters on."""
    return kv.increment(conn, GENERATION_KEY)


def read_generation(conn: apsw.Connection) -> int:
    return int(kv.get(conn, GENERATION_KEY, "0") or "0")


def read_epoch(conn: apsw.Connection) -> int:
    """Bumped whenever a vec0 table is created or rebuilt (in-memory copies must reload)."""
    return int(kv.get(conn, EPOCH_KEY, "0") or "0")


# -- writes ----------------------------------------------------------------------------------
_META_SQL = (
    "SELECT c.id, d.scope, coalesce(d.mime, ''), " + MODIFIED_AT_SQL + " "
    "FROM chunks c JOIN documents d ON d.id = c.document_id WHERE c.id IN ({marks})"
)


def _chunk_meta(conn: apsw.Connection, chunk_ids: Sequence[int]) -> dict[int, tuple[str, str, float]]:
    meta: dict[int, tuple[str, str, float]] = {}
    for start in range(0, len(chunk_ids), _BATCH):
        part = list(chunk_ids[start : start + _BATCH])
        sql = _META_SQL.format(marks=",".join("?" * len(part)))
        for cid, scope, mime, modified in conn.execute(sql, part):
            meta[int(cid)] = (str(scope), str(mime), float(modified))
    return meta


def _insert_bits(
    conn: apsw.Connection,
    table: str,
    ids: Sequence[int],
    bits: Bits,
    meta: dict[int, tuple[str, str, float]],
) -> int:
    rows = []
    for cid, packed in zip(ids, bits, strict=True):
        m = meta.get(cid)
        if m is not None:
            rows.append((cid, packed.tobytes(), *m))
    conn.executemany(f"DELETE FROM {table} WHERE chunk_id = ?", [(r[0],) for r in rows])  # noqa: S608
    conn.executemany(
        f"INSERT INTO {table}(chunk_id, embedding, scope, mime, modified_at)"  # noqa: S608
        " VALUES (?, vec_bit(?), ?, ?, ?)",
        rows,
    )
    return len(rows)


def put_vectors(conn: apsw.Connection, model_id: str, rows: Sequence[tuple[int, npt.ArrayLike]]) -> int:
    """Store (or replace) the vectors of existing chunks for ``model_id``.

    Writes the canonical ``embeddings`` rows and the binary vec0 rows (creating the model's
    index on first use, dimension taken from the vectors). The chunks must exist (foreign key).
    Returns the number of vectors written.
    """
    if not rows:
        return 0
    dim = int(np.asarray(rows[0][1]).shape[-1])
    table = ensure_index(conn, model_id, dim)
    ids = [int(cid) for cid, _ in rows]
    matrix = np.stack([check_vector(vec, dim) for _, vec in rows])
    conn.executemany(
        "INSERT INTO embeddings(chunk_id, model_id, vector) VALUES (?, ?, ?)"
        " ON CONFLICT(chunk_id, model_id) DO UPDATE SET vector = excluded.vector",
        [(cid, model_id, to_blob(vec)) for cid, vec in zip(ids, matrix, strict=True)],
    )
    _insert_bits(conn, table, ids, quantize(matrix), _chunk_meta(conn, ids))
    return len(ids)


def delete_chunks(conn: apsw.Connection, chunk_ids: Iterable[int]) -> None:
    """Remove the vectors of these chunks from every model's index and ``embeddings``.

    Call it before or after deleting the chunks themselves (vec0 rows have no foreign key;
    ``embeddings`` rows also go by cascade when the chunk row is deleted)."""
    ids = [(int(c),) for c in chunk_ids]
    if not ids:
        return
    for index in list_indexes(conn):
        if _table_exists(conn, index.table):
            conn.executemany(f"DELETE FROM {index.table} WHERE chunk_id = ?", ids)  # noqa: S608
    conn.executemany("DELETE FROM embeddings WHERE chunk_id = ?", ids)


def _rewrite(conn: apsw.Connection, index: VectorIndex, where: str, params: Sequence[object]) -> int:
    cur = conn.execute(
        "SELECT e.chunk_id, e.vector FROM embeddings e JOIN chunks c ON c.id = e.chunk_id "  # noqa: S608
        f"WHERE e.model_id = ? {where}",
        (index.model_id, *params),
    )
    total = 0
    while True:
        batch = list(itertools.islice(cur, 4096))
        if not batch:
            return total
        ids = [int(r[0]) for r in batch]
        bits = quantize(from_blobs([bytes(r[1]) for r in batch], index.dim))
        total += _insert_bits(conn, index.table, ids, bits, _chunk_meta(conn, ids))


def update_document_meta(conn: apsw.Connection, document_id: str) -> int:
    """Refresh the mirrored scope/mime/modified time of a document's vec0 rows in every index.

    Call it in the transaction that changes ``documents.scope``, ``mime``, ``mtime_ns`` or
    ``updated_at`` of a document whose chunks are kept (and bump the generation)."""
    total = 0
    for index in list_indexes(conn):
        if _table_exists(conn, index.table):
            total += _rewrite(conn, index, "AND c.document_id = ?", (document_id,))
    return total


def rebuild_index(conn: apsw.Connection, model_id: str) -> int:
    """Drop and rebuild ``model_id``'s vec0 table from ``embeddings`` (``docsidecar doctor``).

    Returns the number of rows indexed. ~25 s per million vectors on a laptop core: it holds
    the write transaction for that long.
    """
    index = get_index(conn, model_id)
    if index is None:
        raise VectorIndexMissing(f"no vector index for model {model_id}")
    conn.execute(f"DROP TABLE IF EXISTS {index.table}")
    _create_table(conn, index.table, index.dim)
    bump_generation(conn)
    return _rewrite(conn, index, "", ())


# -- reads -----------------------------------------------------------------------------------
def fetch_vectors(
    conn: apsw.Connection, model_id: str, dim: int, chunk_ids: Sequence[int]
) -> tuple[npt.NDArray[np.int64], FloatVec]:
    """The float vectors of those of ``chunk_ids`` that have one, as (ids, matrix)."""
    found: list[int] = []
    blobs: list[bytes] = []
    cur = conn.cursor()
    for cid in chunk_ids:
        row = cur.execute(
            "SELECT vector FROM embeddings WHERE chunk_id = ? AND model_id = ?", (cid, model_id)
        ).fetchone()
        if row is not None:
            found.append(int(cid))
            blobs.append(bytes(row[0]))
    return np.asarray(found, dtype=np.int64), from_blobs(blobs, dim)


def count_rows(conn: apsw.Connection, table: str) -> int:
    row = conn.execute(f"SELECT count(*) FROM {_table(table)}_rowids").fetchone()  # noqa: S608
    return int(row[0]) if row else 0

"""A persistent text → vector cache for the benchmarks (embedding 100k texts takes a while).

Keyed by sha256 of the text and tagged with the model id, stored in
``tests/bench/out/vectors-<model>.sqlite``. :meth:`VectorCache.ensure` embeds only the texts that
are missing and commits every batch, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import TextIO

import apsw
import numpy as np
import numpy.typing as npt

from backend.embed.manifest import DEFAULT_MODEL_ID, find_manifest
from backend.embed.onnx_embedder import OnnxEmbedder

OUT_DIR = Path(__file__).resolve().parent / "out"
MODELS_DIR = Path(__file__).resolve().parents[2] / "models"
BATCH = 256


def load_embedder(threads: int = 2, model_id: str = DEFAULT_MODEL_ID) -> OnnxEmbedder:
    """The real model (fetch it first with ``make models``)."""
    manifest = find_manifest(MODELS_DIR, model_id)
    return OnnxEmbedder.load(manifest, manifest.dir_in(MODELS_DIR), threads=threads)


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class VectorCache:
    def __init__(self, conn: apsw.Connection, model_id: str) -> None:
        self.conn = conn
        self.model_id = model_id

    @classmethod
    def open(cls, model_id: str, directory: Path = OUT_DIR) -> VectorCache:
        directory.mkdir(parents=True, exist_ok=True)
        conn = apsw.Connection(str(directory / f"vectors-{model_id}.sqlite"))
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vector BLOB NOT NULL) WITHOUT ROWID")
        return cls(conn, model_id)

    def __enter__(self) -> VectorCache:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.conn.close()

    def missing(self, texts: Sequence[str]) -> list[str]:
        have = {str(r[0]) for r in self.conn.execute("SELECT key FROM vectors")}
        seen: set[str] = set()
        out = []
        for t in texts:
            k = text_key(t)
            if k not in have and k not in seen:
                seen.add(k)
                out.append(t)
        return np.empty((0, 0), dtype=np.float32) if out is None else out

    def ensure(self, embedder: OnnxEmbedder, texts: Sequence[str], progress: TextIO | None = None) -> None:
        todo = self.missing(texts)
        t0 = time.perf_counter()
        done = 0
        for i in range(0, len(todo), BATCH):
            batch = todo[i : i + BATCH]
            vecs = embedder.embed(batch)
            with self.conn:
                self.conn.executemany(
                    "INSERT OR REPLACE INTO vectors(key, vector) VALUES (?, ?)",
                    [(text_key(t), v.astype("<f4").tobytes()) for t, v in zip(batch, vecs, strict=True)],
                )
            done += len(batch)
            if progress is not None:
                rate = done / max(time.perf_counter() - t0, 1e-9)
                eta = (len(todo) - done) / max(rate, 1e-9)
                print(f"embedded {done}/{len(todo)} ({rate:.1f}/s, eta {eta:.0f} s)", file=progress,
                      flush=True)  # fmt: skip

    def get(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Vectors of ``texts`` in order; KeyError if one is missing (run ``ensure`` first)."""
        out: npt.NDArray[np.float32] | None = None
        cur = self.conn.cursor()
        for i, t in enumerate(texts):
            row = cur.execute("SELECT vector FROM vectors WHERE key = ?", (text_key(t),)).fetchone()
            if row is None:
                raise KeyError(f"no cached vector for text #{i}: {t[:60]!r}")
            vec = np.frombuffer(row[0], dtype="<f4")
            if out is None:
                out = np.empty((len(texts), vec.shape[0]), dtype=np.float32)
            out[i] = vec
        return np.empty((0, 0), dtype=np.float32) if out is None else out

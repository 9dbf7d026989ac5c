"""One engine of the embedding benchmark, measured in its own process (run by bench_embed.py).

    python embed_worker.py ENGINE JOB.json RESULT.json

ENGINE is ``ours`` (OnnxEmbedder: length bucketing, token budget, spinning off), ``naive``
(same int8 ONNX model, fixed batches of 32 padded to 256 tokens, default session options) or
``st`` (sentence-transformers on PyTorch, fp32 reference weights, batch 32). A separate process
per engine gives each its own peak RSS and keeps torch's and onnxruntime's thread pools apart.
``st`` imports nothing from the project, so it can run in a venv that only has torch +
sentence-transformers.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

Embed = Callable[[list[str]], np.ndarray]


def peak_rss_mb() -> float:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024 if sys.platform != "darwin" else kb / 2**20


def cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def timed_bulk(embed: Embed, texts: list[str], rounds: int) -> tuple[float, np.ndarray]:
    """Best wall time of ``rounds`` full passes (noise on a shared machine only adds time)."""
    best, _cpu, out = timed_bulk_cpu(embed, texts, rounds)
    return best, out


def timed_bulk_cpu(embed: Embed, texts: list[str], rounds: int) -> tuple[float, float, np.ndarray]:
    """Best wall time and best process CPU time (all threads) of ``rounds`` full passes.

    CPU seconds are less disturbed than wall time by other processes on a shared machine."""
    best, best_cpu, out = float("inf"), float("inf"), np.empty(0)
    for _ in range(rounds):
        c0, t0 = cpu_seconds(), time.perf_counter()
        out = embed(texts)
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, cpu_seconds() - c0)
    return best, best_cpu, out


def latencies_ms(one: Callable[[str], Any], queries: list[str]) -> dict[str, float]:
    for q in queries[:5]:
        one(q)
    times = []
    for q in queries:
        t0 = time.perf_counter()
        one(q)
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return {
        "median": statistics.median(times),
        "p95": times[max(0, int(len(times) * 0.95) - 1)],
        "n": len(times),
    }


def idle_cpu_after_work(embed: Embed, texts: list[str], trials: int = 3) -> float:
    """CPU seconds the process burns in the 1 s after an embed returns (median of trials)."""
    out = []
    for _ in range(trials):
        embed(texts)
        c0 = cpu_seconds()
        time.sleep(1.0)
        out.append(cpu_seconds() - c0)
    return statistics.median(out)


def engine_ours(job: dict[str, Any]) -> dict[str, Any]:
    return _engine_onnx(job, job["model_id"], measure_spinning=True)


def engine_fast(job: dict[str, Any]) -> dict[str, Any]:
    """The opt-in dynamically quantised model through the same embedder (one sequence per run)."""
    return _engine_onnx(job, job["fast_model_id"], measure_spinning=False)


def _engine_onnx(job: dict[str, Any], model_id: str, *, measure_spinning: bool) -> dict[str, Any]:
    from backend.embed.manifest import find_manifest
    from backend.embed.onnx_embedder import OnnxEmbedder

    manifest = find_manifest(Path(job["models_dir"]), model_id)
    model_dir = manifest.dir_in(Path(job["models_dir"]))

    def load(spin: bool) -> tuple[OnnxEmbedder, float]:
        t0 = time.perf_counter()
        emb = OnnxEmbedder.load(
            manifest, model_dir, threads=job["threads"], allow_spinning=spin,
            token_budget=job["token_budget"], query_cache_size=0,
        )  # fmt: skip
        seconds = time.perf_counter() - t0
        emb.embed(job["chunks"][:32])  # warm-up
        return emb, seconds

    # The shipped configuration (spinning off): full throughput run, latency, RSS, vectors.
    off, load_s = load(False)
    bulk_s, bulk_cpu_s, vecs = timed_bulk_cpu(off.embed, job["chunks"], job["rounds"])
    np.save(job["vectors_out"], vecs)
    result: dict[str, Any] = {
        "load_s": load_s,
        "bulk_s": bulk_s,
        "bulk_cpu_s": bulk_cpu_s,
        "query_ms": latencies_ms(off.embed_query, job["queries"]),
        "peak_rss_mb": peak_rss_mb(),
    }
    if not measure_spinning:
        return result
    # Spinning on vs off: idle CPU after work, and what turning spinning off costs.
    on, _ = load(True)
    subset = job["chunks"][: max(64, len(job["chunks"]) // 5)]
    spin: dict[str, Any] = {}
    for name, emb in (("spin_off", off), ("spin_on", on)):
        spin[name] = {
            "idle_cpu_s_after_embed": idle_cpu_after_work(emb.embed, job["chunks"][:16]),
            "idle_cpu_s_after_query": idle_cpu_after_work(lambda t, e=emb: e.embed_query(t[0]), job["queries"][:1]),
            "query_ms": latencies_ms(emb.embed_query, job["queries"]),
            "bulk_subset_s": timed_bulk(emb.embed, subset, job["rounds"])[0],
            "bulk_subset_chunks": len(subset),
        }
    result["spinning"] = spin
    return result


def engine_naive(job: dict[str, Any]) -> dict[str, Any]:
    import onnxruntime as ort
    from tokenizers import Tokenizer

    model_dir = Path(job["models_dir"]) / job["model_id"]
    t0 = time.perf_counter()
    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.enable_truncation(max_length=256)
    tok.enable_padding(length=256)
    so = ort.SessionOptions()
    so.intra_op_num_threads = job["threads"]
    sess = ort.InferenceSession(str(model_dir / "model.onnx"), sess_options=so, providers=["CPUExecutionProvider"])
    load_s = time.perf_counter() - t0

    def embed(texts: list[str]) -> np.ndarray:
        parts = []
        for i in range(0, len(texts), 32):
            enc = tok.encode_batch(texts[i : i + 32])
            ids = np.array([e.ids for e in enc], dtype=np.int64)
            mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            hidden = sess.run(None, feeds)[0]
            m = mask[:, :, None].astype(np.float32)
            pooled = (hidden * m).sum(1) / np.maximum(m.sum(1), 1e-9)
            parts.append(pooled / np.linalg.norm(pooled, axis=1, keepdims=True))
        return np.concatenate(parts)

    embed(job["chunks"][:32])
    bulk_s, bulk_cpu_s, vecs = timed_bulk_cpu(embed, job["chunks"], job["rounds"])
    np.save(job["vectors_out"], vecs)
    return {
        "load_s": load_s,
        "bulk_s": bulk_s,
        "bulk_cpu_s": bulk_cpu_s,
        "query_ms": latencies_ms(lambda q: embed([q]), job["queries"]),
        "peak_rss_mb": peak_rss_mb(),
    }


def engine_st(job: dict[str, Any]) -> dict[str, Any]:
    import sentence_transformers
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(job["threads"])
    t0 = time.perf_counter()
    model = SentenceTransformer(job["reference_dir"], device="cpu")
    load_s = time.perf_counter() - t0

    def embed(texts: list[str]) -> np.ndarray:
        return np.asarray(
            model.encode(
                texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True,
                show_progress_bar=False,
            )
        )  # fmt: skip

    embed(job["chunks"][:32])
    bulk_s, bulk_cpu_s, vecs = timed_bulk_cpu(embed, job["chunks"], job["rounds"])
    np.save(job["vectors_out"], vecs)
    return {
        "load_s": load_s,
        "bulk_s": bulk_s,
        "bulk_cpu_s": bulk_cpu_s,
        "query_ms": latencies_ms(lambda q: embed([q]), job["queries"]),
        "peak_rss_mb": peak_rss_mb(),
        "versions": {
            "torch": torch.__version__,
            "sentence_transformers": sentence_transformers.__version__,
            "torch_threads": torch.get_num_threads(),
        },
    }


ENGINES = {"ours": engine_ours, "fast": engine_fast, "naive": engine_naive, "st": engine_st}


def main() -> None:
    engine, job_path, out_path = sys.argv[1:4]
    job = json.loads(Path(job_path).read_text(encoding="utf-8"))
    job["vectors_out"] = str(Path(out_path).with_suffix(".npy"))
    result = ENGINES[engine](job)
    Path(out_path).write_text(json.dumps(result), encoding="utf-8")


if __name__ == "__main__":
    main()

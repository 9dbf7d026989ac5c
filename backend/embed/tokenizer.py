"""Loading the model's ``tokenizer.json`` (verified) for the chunker and the embedder.

The shipped ``tokenizer.json`` of all-MiniLM-L6-v2 has truncation at 128 and fixed padding to
128 baked in; both are switched off here. The chunker gets that plain tokenizer (it counts the
tokens of whole paragraphs and needs character offsets); the embedder makes its own copy with
truncation at the manifest's ``max_tokens`` (special tokens included, as sentence-transformers).
"""

from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer

from backend.embed.errors import ModelLoadFailed
from backend.embed.manifest import ModelManifest
from backend.embed.verify import read_verified


def tokenizer_from_bytes(data: bytes, *, source: str = "tokenizer.json") -> Tokenizer:
    """A tokenizer from ``tokenizer.json`` bytes, with no truncation and no padding."""
    try:
        tok = Tokenizer.from_str(data.decode("utf-8"))
    except Exception as exc:  # tokenizers raises plain Exception subclasses
        raise ModelLoadFailed(f"cannot load tokenizer {source}: {exc}") from exc
    tok.no_truncation()
    tok.no_padding()
    return tok


def load_tokenizer(manifest: ModelManifest, model_dir: Path) -> Tokenizer:
    """Verify ``tokenizer.json`` in ``model_dir`` (size + sha256) and load it without
    truncation or padding. Needs only the tokenizer file, so chunking works even when the ONNX
    file is missing or corrupt. Raises ``ModelMissing`` / ``ModelCorrupt`` / ``ModelLoadFailed``."""
    spec = manifest.tokenizer_file
    data = read_verified(manifest, spec, model_dir)
    return tokenizer_from_bytes(data, source=str(model_dir / spec.path))


def truncating_copy(data: bytes, max_tokens: int) -> Tokenizer:
    """The embedder's tokenizer: truncates every input at ``max_tokens`` including [CLS]/[SEP]."""
    tok = tokenizer_from_bytes(data)
    tok.enable_truncation(max_length=max_tokens)
    return tok

"""Pure numpy post-processing of transformer outputs: masked mean pooling, L2 normalisation."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]


def mean_pool(hidden: npt.NDArray[np.floating], mask: npt.NDArray[np.integer]) -> FloatArray:
    """Average ``hidden`` [batch, seq, dim] over the positions where ``mask`` [batch, seq] is 1.

    Padded positions never contribute, whatever they hold. A row with no unmasked position
    yields a zero vector (never NaN). Accumulates in float32, like sentence-transformers.
    """
    if hidden.ndim != 3 or mask.shape != hidden.shape[:2]:
        raise ValueError(f"shape mismatch: hidden {hidden.shape}, mask {mask.shape}")
    m = mask.astype(np.float32)[:, :, None]
    summed = np.einsum("bsd,bsk->bd", hidden.astype(np.float32, copy=False), m)
    counts = np.maximum(m.sum(axis=1), np.float32(1e-9))
    pooled: FloatArray = (summed / counts).astype(np.float32, copy=False)
    return pooled


def l2_normalize(x: npt.NDArray[np.floating], eps: float = 1e-12) -> FloatArray:
    """Scale each row of ``x`` [n, dim] to unit L2 norm; rows of norm < ``eps`` stay as they are
    (a zero row stays zero). Same rule as ``torch.nn.functional.normalize``."""
    x32 = x.astype(np.float32, copy=False)
    norms = np.linalg.norm(x32, axis=-1, keepdims=True)
    out: FloatArray = (x32 / np.maximum(norms, np.float32(eps))).astype(np.float32, copy=False)
    return out

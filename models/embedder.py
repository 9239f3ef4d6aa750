"""The contract every re-ID embedder meets, and the few helpers they share.

Embeddings are L2-normalised so that cosine similarity is a dot product and cosine distance is
``1 - dot``: one distance for ranking, thresholds and any vector index.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Embedder(Protocol):
    """Maps person crops to embeddings: ``embed`` returns float32 (N, dim), rows L2-normalised.

    Crops are BGR uint8 arrays of shape (H, W, 3), OpenCV's convention, of any size; resizing and
    colour conversion are the embedder's job, so callers pass detector crops as they are.
    """

    name: str
    dim: int

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray: ...


def l2_normalise(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows of ``x`` scaled to unit L2 norm, as float32; an all-zero row stays zero."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, eps)


def cosine_distance(query: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """(Q, G) cosine distances ``1 - dot`` between L2-normalised rows, in 0..2, float32."""
    return 1.0 - np.asarray(query, dtype=np.float32) @ np.asarray(gallery, dtype=np.float32).T


def check_bgr_crop(crop: np.ndarray, index: int) -> None:
    """Raise ValueError unless ``crop`` is a non-empty uint8 (H, W, 3) image; ``index`` names it."""
    if not isinstance(crop, np.ndarray) or crop.dtype != np.uint8:
        got = f"{crop.dtype} array" if isinstance(crop, np.ndarray) else type(crop).__name__
        raise ValueError(f"crop {index}: expected a uint8 numpy array, got {got}")
    if crop.ndim != 3 or crop.shape[2] != 3 or crop.shape[0] == 0 or crop.shape[1] == 0:
        raise ValueError(
            f"crop {index}: expected a non-empty BGR image (H, W, 3), got {crop.shape}"
        )


def embed_in_batches(
    crops: Sequence[np.ndarray],
    dim: int,
    batch_size: int,
    preprocess: Callable[[Sequence[np.ndarray]], np.ndarray],
    run: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    """The loop every network backend shares: check every crop first (a bad one fails the call
    before any work), then preprocess and run ``batch_size`` at a time, L2-normalise the rows."""
    for i, crop in enumerate(crops):
        check_bgr_crop(crop, i)
    out = np.empty((len(crops), dim), dtype=np.float32)
    for start in range(0, len(crops), batch_size):
        batch = preprocess(crops[start : start + batch_size])
        out[start : start + len(batch)] = run(batch)
    return l2_normalise(out)


def pad_to_fixed_batch(batch: np.ndarray, fixed: int | None) -> np.ndarray:
    """Models exported with a fixed batch size take exactly that many images: pad with blanks
    (the caller keeps the first ``len(batch)`` outputs)."""
    if not fixed or len(batch) >= fixed:
        return batch
    return np.concatenate([batch, np.zeros((fixed - len(batch), *batch.shape[1:]), batch.dtype)])

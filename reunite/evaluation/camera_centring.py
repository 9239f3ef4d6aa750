"""Camera centring: subtract each camera's mean embedding before ranking.

Every camera adds its own bias to the embeddings of everyone it sees: its colour cast, exposure,
height and angle, its IR mode at night. Across cameras that bias is larger than many differences
between people, and it is the same for everyone a camera sees, so the mean embedding of a
camera's crops estimates it without a single identity label (the "camera bias" that
camera-aware re-ID methods remove, e.g. camera-based batch normalisation, Zhuang et al., ECCV
2020; here the simplest form, a mean per camera at test time). It is transductive, like
k-reciprocal re-ranking: it reads the statistics of the crops being ranked, which a deployment
has too (a camera's own recent sightings). Measured with 7.0.0 (PyTorch fp32), rank-1 / mAP,
plain against centred by camera: seed 303 0.759 / 0.655 against 0.788 / 0.691, seed 305 0.582
/ 0.490 against 0.646 / 0.551, seed 202 0.819 / 0.722 against 0.841 / 0.746, seed 206 0.722 /
0.591 against 0.727 / 0.598.
"""

from __future__ import annotations

import numpy as np


def centre_by_camera(
    query: np.ndarray, gallery: np.ndarray, q_keys: np.ndarray, g_keys: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings minus the mean embedding of their camera, L2-normalised again.

    ``q_keys`` / ``g_keys`` name each crop's camera, (N,) or (N, k) (e.g. block and camera, so
    that camera 1 of one pooled split is not camera 1 of another); a camera's mean is taken over
    its query and gallery crops together. A crop equal to its camera's mean (a camera that saw
    one crop) stays a zero vector: it matches nothing better than anything else.
    """
    features = np.concatenate([query, gallery]).astype(np.float32)
    keys = np.concatenate([q_keys, g_keys])
    _, inverse = np.unique(keys.reshape(len(keys), -1), axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    sums = np.zeros((inverse.max() + 1, features.shape[1]), np.float64)
    np.add.at(sums, inverse, features)
    means = sums / np.bincount(inverse)[:, None]
    centred = features - means[inverse].astype(np.float32)
    norms = np.linalg.norm(centred, axis=1, keepdims=True)
    centred = np.divide(centred, norms, out=np.zeros_like(centred), where=norms > 1e-12)
    return centred[: len(query)], centred[len(query) :]

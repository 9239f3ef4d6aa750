"""Matching: query embeddings of one person (one or several photos) in, ranked sightings out.

Each query photo is searched on its own over the shards the filter selects; the candidates are
then scored against *every* photo and the scores fused — by default the maximum over photos, so a
sighting that matches any one view of the person (front in one photo, back in another) ranks high,
or the mean, which rewards sightings consistent with all of them. Scores are cosine similarities
(1 = identical direction), comparable with the model card's calibrated threshold (a cosine
*distance*, ``1 - score``). Optional k-reciprocal re-ranking (Zhong et al., CVPR 2017) reorders
the candidates; its distances are not cosine, so its scores are only for ordering.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from reunite.errors import InvalidOptionError
from reunite.models.embedder import l2_normalise
from reunite.pipeline.vector_store import SearchFilter, VectorStore

Fusion = Literal["max", "mean"]


@dataclass(frozen=True, slots=True)
class Match:
    sighting_id: int
    score: float
    per_query: tuple[float, ...]


def match(
    store: VectorStore,
    queries: np.ndarray,
    *,
    k: int = 50,
    where: SearchFilter | None = None,
    fusion: Fusion = "max",
    rerank: bool = False,
    candidates_per_query: int | None = None,
) -> list[Match]:
    """Rank the sightings that pass ``where`` for the person the ``queries`` (Q, dim) show."""
    queries = np.asarray(queries, dtype=np.float32)
    if queries.ndim == 1:
        queries = queries[None, :]
    if queries.ndim != 2 or len(queries) == 0 or queries.shape[1] != store.dim:
        raise InvalidOptionError(
            f"queries must be (Q >= 1, {store.dim}) embeddings of the index's model, got "
            f"{queries.shape}"
        )
    if k < 1:
        raise InvalidOptionError(f"k must be >= 1, got {k}")
    if fusion not in ("max", "mean"):
        raise InvalidOptionError(f"fusion must be 'max' or 'mean', got {fusion!r}")
    queries = l2_normalise(queries)
    per_query = candidates_per_query or max(4 * k, 100)
    _, ids = store.search(queries, per_query, where)
    candidates = np.unique(ids[ids >= 0])
    if len(candidates) == 0:
        return []
    vectors = store.get_vectors(candidates)
    scores = queries @ vectors.T  # (Q, C)
    fused = scores.max(axis=0) if fusion == "max" else scores.mean(axis=0)
    if rerank:
        from reunite.evaluation.reid_eval import k_reciprocal_rerank

        distances = k_reciprocal_rerank(queries, vectors)  # (Q, C)
        order_key = -(distances.min(axis=0) if fusion == "max" else distances.mean(axis=0))
    else:
        order_key = fused
    order = np.lexsort((candidates, -order_key))[:k]
    return [
        Match(int(candidates[i]), float(fused[i]), tuple(float(s) for s in scores[:, i]))
        for i in order
    ]

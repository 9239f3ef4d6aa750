"""From a tracklet to a sighting: keep its best crops, embed them, aggregate one vector.

A sighting is one person's pass in front of one camera. Its vector is the quality-weighted mean of
its best crops' embeddings (re-normalised): averaging over views and poses cancels part of the
per-frame noise (blur, a leg hidden, a bad box), which is why video re-ID aggregates over
tracklets; weighting by crop quality keeps a tiny or half-occluded crop from pulling the mean.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from reunite.models.embedder import Embedder, l2_normalise
from reunite.pipeline.detection import Detection
from reunite.pipeline.quality import CropQuality


@dataclass(frozen=True, slots=True)
class CropCandidate:
    image: np.ndarray
    box: Detection
    quality: CropQuality
    frame_index: int
    time: datetime


@dataclass
class BestCrops:
    """The ``keep`` best crops of one track seen so far (a min-heap on quality)."""

    keep: int
    _heap: list[tuple[float, int, CropCandidate]] = field(default_factory=list)
    _seen: int = 0

    def would_keep(self, score: float, frame_index: int) -> bool:
        """Whether a crop of this quality would enter the best ``keep`` (so is worth cutting)."""
        return len(self._heap) < self.keep or (score, -frame_index) > self._heap[0][:2]

    def offer(self, candidate: CropCandidate) -> None:
        self._seen += 1
        item = (candidate.quality.score, -candidate.frame_index, candidate)
        if len(self._heap) < self.keep:
            heapq.heappush(self._heap, item)
        elif item[:2] > self._heap[0][:2]:
            heapq.heapreplace(self._heap, item)

    def best_first(self) -> list[CropCandidate]:
        return [c for _, _, c in sorted(self._heap, key=lambda t: t[:2], reverse=True)]


@dataclass
class SightingDraft:
    """A finished tracklet with its crops, before it is stored."""

    track_id: int
    start_time: datetime
    end_time: datetime
    frames: int
    crops: list[CropCandidate]
    frame: np.ndarray | None = None
    """The whole frame the best crop was cut from (BGR), stored for context."""
    embeddings: np.ndarray | None = None
    vector: np.ndarray | None = None

    @property
    def best(self) -> CropCandidate:
        return self.crops[0]

    @property
    def quality(self) -> float:
        return self.best.quality.score


def aggregate(embeddings: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Quality-weighted mean of L2-normalised rows, re-normalised; equal weights if all are 0."""
    weights = np.asarray(weights, dtype=np.float32)
    if not np.any(weights > 0):
        weights = np.ones_like(weights)
    return l2_normalise((weights[:, None] * embeddings).sum(axis=0, keepdims=True))[0]


def embed_sightings(drafts: list[SightingDraft], embedder: Embedder) -> None:
    """Embed every draft's crops in one batched call and set ``embeddings`` and ``vector``."""
    crops = [c.image for d in drafts for c in d.crops]
    if not crops:
        return
    vectors = embedder.embed(crops)
    start = 0
    for draft in drafts:
        n = len(draft.crops)
        draft.embeddings = vectors[start : start + n]
        draft.vector = aggregate(draft.embeddings, np.array([c.quality.score for c in draft.crops]))
        start += n

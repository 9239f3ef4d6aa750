"""Re-identification metrics from a query-by-gallery distance matrix (Market-1501 protocol).

For each query the gallery is filtered before ranking: entries of the same identity seen by the
same camera are excluded (matching them is tracking, not re-identification), and junk entries
(pid -1) are excluded. Every other entry stays: pid 0 gets no special treatment, so Market-1501
distractors (0000) are simply negatives for every real query. Queries left with no true match are
skipped and counted. Same-camera sets (e.g. frames of one MOT17 sequence) turn the camera rule off
with ``exclude_same_camera=False``. A pair at an infinite (or NaN) distance is never compared: it
is neither ranked nor counted, which lets one matrix hold several independent rankings.

Scoring is per query (``score_queries``), so the same ranking yields the overall figures, figures
for any subgroup of queries, and the worst queries for a failure sheet. Rows are processed in
chunks so that a 20k x 20k matrix needs only a few hundred MB beyond itself. Ranking is stable:
tied distances keep gallery order, so results are reproducible.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

JUNK_PID = -1

# Elements per (rows, gallery) working array; bounds memory whatever the gallery size.
_CHUNK_ELEMENTS = 1 << 22


@dataclass(frozen=True)
class RankResult:
    """CMC curve (``cmc[k-1]`` = rank-k accuracy), mAP and mINP as fractions in 0..1.

    Averages are over the ``num_valid_queries`` queries that have a true match; the other
    ``num_queries - num_valid_queries`` are skipped, not counted as failures.
    """

    cmc: np.ndarray
    mAP: float
    mINP: float
    num_valid_queries: int
    num_queries: int

    def rank(self, k: int) -> float:
        """Rank-k accuracy: the fraction of valid queries with a true match in the top k."""
        if not 1 <= k <= len(self.cmc):
            raise ValueError(f"rank k must be in 1..{len(self.cmc)}, got {k}")
        return float(self.cmc[k - 1])


@dataclass(frozen=True)
class QueryScores:
    """What the ranking gave each query; the raw material of every averaged figure.

    ``first_hit`` is the 1-based rank of the query's first true match among its kept gallery
    entries, 0 when it has none (the query is not valid). ``ap`` is its average precision and
    ``inp`` its inverse negative penalty (Ye et al. 2021: number of true matches over the rank of
    the last one); both are NaN for queries that are not valid.
    """

    first_hit: np.ndarray
    ap: np.ndarray
    inp: np.ndarray

    @property
    def valid(self) -> np.ndarray:
        return self.first_hit > 0

    def summarise(self, max_rank: int = 50, subset: np.ndarray | None = None) -> RankResult:
        """CMC up to ``max_rank``, mAP and mINP over the valid queries (of ``subset``, a mask).

        Raises ValueError if no query (of the subset) is valid.
        """
        if max_rank < 1:
            raise ValueError(f"max_rank must be at least 1, got {max_rank}")
        chosen = np.ones(len(self.first_hit), bool) if subset is None else np.asarray(subset)
        if chosen.shape != self.first_hit.shape or chosen.dtype != bool:
            raise ValueError(f"subset must be a boolean mask of {len(self.first_hit)} queries")
        valid = self.valid & chosen
        num_valid = int(valid.sum())
        if num_valid == 0:
            raise ValueError(
                "no query has a true match in the gallery (a match of the same person on the "
                "query's own camera does not count)"
            )
        first = self.first_hit[valid]
        counts = np.bincount(first[first <= max_rank] - 1, minlength=max_rank)
        return RankResult(
            cmc=np.cumsum(counts) / num_valid,
            mAP=float(self.ap[valid].mean()),
            mINP=float(self.inp[valid].mean()),
            num_valid_queries=num_valid,
            num_queries=int(chosen.sum()),
        )

    @staticmethod
    def concatenate(parts: Sequence[QueryScores]) -> QueryScores:
        """Scores of several independent rankings (e.g. one per sequence), pooled."""
        return QueryScores(
            first_hit=np.concatenate([p.first_hit for p in parts]),
            ap=np.concatenate([p.ap for p in parts]),
            inp=np.concatenate([p.inp for p in parts]),
        )


def score_queries(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    *,
    exclude_same_camera: bool = True,
) -> QueryScores:
    """Rank every query's gallery (smaller distance = more similar) and score it.

    AP is the mean, over a query's true matches, of the precision at each match's rank.
    """
    arrays = _check_inputs(distmat, q_pids, g_pids, q_camids, g_camids)
    num_q = distmat.shape[0]
    first_hit = np.zeros(num_q, dtype=np.int64)
    ap = np.full(num_q, np.nan)
    inp = np.full(num_q, np.nan)
    for rows, positive, valid in _chunks(distmat, *arrays, exclude_same_camera):
        order = _stable_argsort(distmat[rows])
        valid = np.take_along_axis(valid, order, axis=1)
        hit = np.take_along_axis(positive, order, axis=1) & valid
        num_hits = hit.sum(axis=1)
        scored = np.flatnonzero(num_hits > 0)
        valid, hit, num_hits = valid[scored], hit[scored], num_hits[scored]
        index = rows.start + scored

        # 1-based rank of each entry among the valid (kept) gallery entries of its query.
        rank_of = np.cumsum(valid, axis=1)
        hits_so_far = np.cumsum(hit, axis=1)
        precision = np.divide(hits_so_far, rank_of, out=np.zeros(hit.shape), where=hit)
        ap[index] = precision.sum(axis=1) / num_hits
        inp[index] = num_hits / np.where(hit, rank_of, 0).max(axis=1)
        first_hit[index] = np.where(hit, rank_of, np.iinfo(np.int64).max).min(axis=1)
    return QueryScores(first_hit=first_hit, ap=ap, inp=inp)


def evaluate_rank(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    max_rank: int = 50,
    *,
    exclude_same_camera: bool = True,
) -> RankResult:
    """CMC, mAP and mINP of a (Q, G) distance matrix. Raises ValueError if no query is valid."""
    if max_rank < 1:
        raise ValueError(f"max_rank must be at least 1, got {max_rank}")
    scores = score_queries(
        distmat, q_pids, g_pids, q_camids, g_camids, exclude_same_camera=exclude_same_camera
    )
    return scores.summarise(max_rank)


def top_matches(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    k: int = 10,
    *,
    exclude_same_camera: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Each query's ``k`` nearest kept gallery entries, as a reviewer would see the list.

    Returns (indices, distances), both (Q, k), nearest first, in the stable order the metrics use;
    rows with fewer than ``k`` kept entries are padded with index -1 and distance NaN.
    """
    arrays = _check_inputs(distmat, q_pids, g_pids, q_camids, g_camids)
    num_q = distmat.shape[0]
    indices = np.full((num_q, k), -1, dtype=np.int64)
    distances = np.full((num_q, k), np.nan)
    for rows, _positive, valid in _chunks(distmat, *arrays, exclude_same_camera):
        order = _stable_argsort(distmat[rows])
        kept = np.take_along_axis(valid, order, axis=1)
        slot = np.cumsum(kept, axis=1) - 1  # position of each kept entry in the shown list
        row, column = np.nonzero(kept & (slot < k))
        picked = order[row, column]
        indices[rows.start + row, slot[row, column]] = picked
        distances[rows.start + row, slot[row, column]] = distmat[rows.start + row, picked]
    return indices, distances


def count_valid_pairs(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
) -> tuple[int, int]:
    """(positive, negative) query-gallery pairs that survive the ranking exclusions."""
    arrays = _check_inputs(distmat, q_pids, g_pids, q_camids, g_camids)
    positives = negatives = 0
    for _rows, positive, valid in _chunks(distmat, *arrays, True):
        positives += int((valid & positive).sum())
        negatives += int((valid & ~positive).sum())
    return positives, negatives


def tpr_at_fpr(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    fprs: Sequence[float] = (1e-3, 1e-4),
) -> dict[float, tuple[float, float]]:
    """Verification view: for each target FPR, ``(tpr, threshold)`` over all valid pairs.

    Pairs are every (query, gallery) pair that survives the ranking exclusions; positives share a
    pid, negatives do not. ``threshold`` is a distance: a pair is called "same person" when its
    distance is <= threshold. It is the largest such value whose false positive rate is at most
    the target, so it can be used directly to calibrate an alert. Only the few smallest negative
    distances are kept, never all Q x G of them.
    """
    arrays = _check_inputs(distmat, q_pids, g_pids, q_camids, g_camids)
    if not fprs or not all(0.0 < f <= 1.0 for f in fprs):
        raise ValueError(f"fprs must be non-empty and each in (0, 1], got {fprs}")

    _, num_negatives = count_valid_pairs(distmat, *arrays)
    if num_negatives == 0:
        raise ValueError("no valid negative pair: every gallery entry matches every query")
    allowed = {fpr: _allowed_false_positives(fpr, num_negatives) for fpr in fprs}
    # The threshold for a target FPR sits just below the (allowed+1)-th smallest negative distance.
    keep = min(num_negatives, max(allowed.values()) + 1)
    positives: list[np.ndarray] = []
    smallest_negatives = np.empty(0, dtype=distmat.dtype)
    for rows, positive, valid in _chunks(distmat, *arrays, True):
        block = distmat[rows]
        positives.append(block[positive & valid])
        negatives = np.concatenate([smallest_negatives, block[valid & ~positive]])
        if len(negatives) > keep:
            negatives = np.partition(negatives, keep - 1)[:keep]
        smallest_negatives = negatives
    positive_distances = np.concatenate(positives)
    if len(positive_distances) == 0:
        raise ValueError("no valid positive pair: no query has a true match in the gallery")
    smallest_negatives.sort()

    result: dict[float, tuple[float, float]] = {}
    for fpr in fprs:
        if allowed[fpr] >= num_negatives:
            threshold = np.inf
        else:
            boundary = smallest_negatives[allowed[fpr]]
            threshold = float(np.nextafter(boundary, -np.inf, dtype=boundary.dtype))
        tpr = float(np.count_nonzero(positive_distances <= threshold) / len(positive_distances))
        result[fpr] = (tpr, float(threshold))
    return result


def _allowed_false_positives(fpr: float, num_negatives: int) -> int:
    """floor(fpr * n), robust to products like 0.29 * 100 = 28.999999999999996."""
    return min(num_negatives, math.floor(fpr * num_negatives * (1 + 1e-12)))


def _check_inputs(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    if distmat.ndim != 2:
        raise ValueError(f"distmat must be 2-D (queries, gallery), got shape {distmat.shape}")
    num_q, num_g = distmat.shape
    arrays = [np.asarray(a).ravel() for a in (q_pids, g_pids, q_camids, g_camids)]
    expected = (num_q, num_g, num_q, num_g)
    names = ("q_pids", "g_pids", "q_camids", "g_camids")
    for name, array, n in zip(names, arrays, expected, strict=True):
        if len(array) != n:
            raise ValueError(f"{name} has {len(array)} entries, distmat shape is {distmat.shape}")
    return arrays[0], arrays[1], arrays[2], arrays[3]


def _stable_argsort(block: np.ndarray) -> np.ndarray:
    """Row-wise ``np.argsort(kind="stable")``, about 3x faster for float32 distances.

    Each float32 is mapped to an int32 with the same order, shifted up, and given the gallery
    index as its low 32 bits: one plain sort of these unique int64 keys is then a stable argsort.
    """
    if block.dtype != np.float32:
        return np.argsort(block, axis=1, kind="stable")
    bits = (block + np.float32(0.0)).view(np.int32)  # + 0.0 turns -0.0 into +0.0
    ordered = np.where(bits < 0, bits ^ np.int32(0x7FFFFFFF), bits).astype(np.int64)
    keys = (ordered << 32) | np.arange(block.shape[1], dtype=np.int64)
    keys.sort(axis=1)
    return keys & 0xFFFFFFFF


def _chunks(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    exclude_same_camera: bool,
) -> Iterator[tuple[slice, np.ndarray, np.ndarray]]:
    """Yield (query rows, positive mask, valid mask) in gallery order, a block of queries at a time.

    ``positive`` marks same-pid entries; ``valid`` marks entries that take part in the ranking:
    not junk, not the query's person on the query's camera (if excluded), at a finite distance.
    """
    num_q, num_g = distmat.shape
    step = max(1, _CHUNK_ELEMENTS // max(1, num_g))
    for start in range(0, num_q, step):
        rows = slice(start, min(start + step, num_q))
        positive = q_pids[rows, None] == g_pids[None, :]
        valid = np.isfinite(distmat[rows]) & (g_pids != JUNK_PID)[None, :]
        if exclude_same_camera:
            valid &= ~(positive & (q_camids[rows, None] == g_camids[None, :]))
        yield rows, positive, valid

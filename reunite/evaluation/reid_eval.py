"""Evaluate an embedder on a Market-1501-style data set: the numbers the benchmark table reports.

This is the one place that reads images, embeds them and hands a distance matrix to the pure
metrics in ``rank``. Optional k-reciprocal re-ranking (Zhong et al., CVPR 2017) is here too: it is
an offline, whole-gallery transformation of the distances, useful to compare with published
figures but not something a live alert can use.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from reunite.errors import DatasetLayoutError
from reunite.evaluation.market1501 import Market1501Layout, ReidImage
from reunite.evaluation.rank import JUNK_PID, evaluate_rank, tpr_at_fpr
from reunite.models.embedder import Embedder, cosine_distance

FPRS = (1e-3, 1e-4)
CMC_RANKS = (1, 5, 10, 20)
_READ_BATCH = 256  # images held in memory at once while embedding


def evaluate_embedder(
    embedder: Embedder, layout: Market1501Layout, rerank: bool = False
) -> dict[str, float | int]:
    """Rank-k, mAP, mINP (fractions 0..1) and TPR at fixed FPRs with their distance thresholds.

    Keys: ``rank1 rank5 rank10 rank20 mAP mINP num_query num_valid_query num_gallery`` and, per
    FPR, ``tpr@1e-3`` / ``thr@1e-3`` (a pair is "same person" when its distance <= thr). With
    ``rerank`` the thresholds are in re-ranked distance units and do not transfer to live matching.
    """
    _check_queries_can_match(layout)
    query = _embed_images(embedder, layout.query)
    gallery = _embed_images(embedder, layout.gallery)
    distmat = k_reciprocal_rerank(query, gallery) if rerank else cosine_distance(query, gallery)
    ids = (
        np.array([image.pid for image in layout.query]),
        np.array([image.pid for image in layout.gallery]),
        np.array([image.camid for image in layout.query]),
        np.array([image.camid for image in layout.gallery]),
    )
    ranks = evaluate_rank(distmat, *ids, max_rank=max(CMC_RANKS))
    metrics: dict[str, float | int] = {f"rank{k}": ranks.rank(k) for k in CMC_RANKS}
    metrics |= {
        "mAP": ranks.mAP,
        "mINP": ranks.mINP,
        "num_query": len(layout.query),
        "num_valid_query": ranks.num_valid_queries,
        "num_gallery": len(layout.gallery),
    }
    for fpr, (tpr, threshold) in tpr_at_fpr(distmat, *ids, fprs=FPRS).items():
        label = np.format_float_scientific(fpr, trim="-", exp_digits=1)
        metrics |= {f"tpr@{label}": tpr, f"thr@{label}": threshold}
    return metrics


def format_metrics_table(rows: dict[str, dict[str, float | int]]) -> str:
    """A Markdown table, one row per model; columns are the metric keys in first-seen order."""
    columns = list(dict.fromkeys(key for metrics in rows.values() for key in metrics))
    lines = [
        "| " + " | ".join(["model", *columns]) + " |",
        "|" + "---|" * (len(columns) + 1),
    ]
    for name, metrics in rows.items():
        cells = [_format_cell(metrics.get(column)) for column in columns]
        lines.append("| " + " | ".join([name, *cells]) + " |")
    return "\n".join(lines) + "\n"


def k_reciprocal_rerank(
    query: np.ndarray,
    gallery: np.ndarray,
    k1: int = 20,
    k2: int = 6,
    lambda_: float = 0.3,
) -> np.ndarray:
    """(Q, G) re-ranked distances from L2-normalised features (Zhong et al., CVPR 2017).

    Two images are close when their k-reciprocal neighbourhoods overlap: the final distance is
    ``(1 - lambda_) * jaccard + lambda_ * cosine``. Neighbourhoods are taken over queries and
    gallery together (the usual transductive protocol). Memory is O((Q + G) * k1), not quadratic.
    """
    features = np.concatenate([query, gallery]).astype(np.float32)
    num_q, total = len(query), len(features)
    k1 = min(k1, total - 1)
    k2 = max(1, min(k2, k1 + 1))
    nearest = _nearest_neighbours(features, k1 + 1)
    reciprocal = _reciprocal_sets(nearest, k1)
    reciprocal_half = _reciprocal_sets(nearest, max(1, round(k1 / 2)))

    # Sparse rows of V: V[p, g] = exp(-d(p, g)) for g in the expanded k-reciprocal set of p.
    members: list[np.ndarray] = []
    weights: list[np.ndarray] = []
    for p in range(total):
        expanded = set(reciprocal[p])
        for q in reciprocal[p]:
            candidate = reciprocal_half[q]
            if len(candidate & reciprocal[p]) >= 2 / 3 * len(candidate):
                expanded |= candidate
        index = np.fromiter(sorted(expanded), dtype=np.int64)
        members.append(index)
        weights.append(np.exp(-(1.0 - features[index] @ features[p])))

    # Local query expansion: each row becomes the mean of its k2 nearest neighbours' rows.
    expanded_members: list[np.ndarray] = []
    expanded_weights: list[np.ndarray] = []
    for p in range(total):
        neighbours = nearest[p, :k2]
        index, inverse = np.unique(
            np.concatenate([members[n] for n in neighbours]), return_inverse=True
        )
        summed = np.bincount(inverse, weights=np.concatenate([weights[n] for n in neighbours]))
        expanded_members.append(index)
        expanded_weights.append(summed / k2)
    members, weights = expanded_members, expanded_weights
    sums = np.array([w.sum() for w in weights])

    # Inverted index over gallery rows: for each column, which gallery rows use it and how much.
    rows = np.concatenate([np.full(len(members[g]), g - num_q) for g in range(num_q, total)])
    cols = np.concatenate(members[num_q:])
    vals = np.concatenate(weights[num_q:])
    by_col = np.argsort(cols, kind="stable")
    rows, vals = rows[by_col], vals[by_col]
    col_start = np.concatenate([[0], np.cumsum(np.bincount(cols, minlength=total))])

    num_g = total - num_q
    jaccard = np.empty((num_q, num_g), dtype=np.float32)
    for i in range(num_q):
        starts, stops = col_start[members[i]], col_start[members[i] + 1]
        lengths = stops - starts
        offsets = np.repeat(starts - np.cumsum(lengths) + lengths, lengths)
        positions = np.arange(lengths.sum()) + offsets
        overlap = np.minimum(np.repeat(weights[i], lengths), vals[positions])
        intersection = np.bincount(rows[positions], weights=overlap, minlength=num_g)
        union = sums[i] + sums[num_q:] - intersection
        jaccard[i] = 1.0 - intersection / union
    return (1.0 - lambda_) * jaccard + lambda_ * cosine_distance(query, gallery)


def _nearest_neighbours(features: np.ndarray, k: int) -> np.ndarray:
    """(N, k) indices of each row's k nearest rows by cosine distance, nearest first."""
    total = len(features)
    nearest = np.empty((total, k), dtype=np.int64)
    step = max(1, (1 << 22) // total)
    for start in range(0, total, step):
        block = cosine_distance(features[start : start + step], features)
        candidates = np.argpartition(block, k - 1, axis=1)[:, :k]
        order = np.argsort(np.take_along_axis(block, candidates, axis=1), axis=1, kind="stable")
        nearest[start : start + step] = np.take_along_axis(candidates, order, axis=1)
    return nearest


def _reciprocal_sets(nearest: np.ndarray, k: int) -> list[set[int]]:
    """R(p, k): the p's k nearest neighbours (and p itself) that have p among their own."""
    forward = nearest[:, : k + 1]
    is_mutual = (forward[forward] == np.arange(len(nearest))[:, None, None]).any(axis=2)
    return [set(row[mask].tolist()) for row, mask in zip(forward, is_mutual, strict=True)]


def _check_queries_can_match(layout: Market1501Layout) -> None:
    """Fail before the (slow) embedding if no query could ever be scored."""
    cameras_of: dict[int, set[int]] = {}
    for image in layout.gallery:
        cameras_of.setdefault(image.pid, set()).add(image.camid)
    if not any(
        image.pid != JUNK_PID and cameras_of.get(image.pid, set()) - {image.camid}
        for image in layout.query
    ):
        raise DatasetLayoutError(
            f"no query in {layout.root / layout.QUERY_DIR} has a gallery image of the same person "
            f"from another camera in {layout.root / layout.GALLERY_DIR}: nothing can be scored"
        )


def _embed_images(embedder: Embedder, images: Sequence[ReidImage]) -> np.ndarray:
    out = np.empty((len(images), embedder.dim), dtype=np.float32)
    for start in range(0, len(images), _READ_BATCH):
        crops = [_read(image) for image in images[start : start + _READ_BATCH]]
        out[start : start + len(crops)] = embedder.embed(crops)
    return out


def _read(image: ReidImage) -> np.ndarray:
    crop = cv2.imread(str(image.path), cv2.IMREAD_COLOR)
    if crop is None:
        raise DatasetLayoutError(f"cannot read image {image.path}: corrupt or not an image")
    return crop


def _format_cell(value: float | int | None) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)

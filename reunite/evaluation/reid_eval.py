"""Evaluate embedders on labelled crops: the figures of the benchmark table and ``reunite eval``.

This is the one place that reads images, embeds them and hands distance matrices to the pure
metrics in ``rank``. An ``EvalSet`` says what is ranked against what (a Market-1501 test split
from ``market_eval_set``, or the MOT17 sanity set from ``mot_sanity``); ``evaluate_set`` embeds it
with one or several models and returns, per model, the figures, the per-query scores and each
query's top matches (enough for failure sheets without keeping a Q x G matrix per model).

Optional k-reciprocal re-ranking (Zhong et al., CVPR 2017) is here too: it is an offline,
whole-gallery transformation of the distances, useful to compare with published figures but not
something a live alert can use. Verification figures (TPR at fixed FPR) and the calibrated alert
threshold are therefore always computed on the plain cosine distances.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from reunite.errors import DatasetLayoutError, InvalidOptionError
from reunite.evaluation.calibration import DEFAULT_FPR, SamePersonThreshold, calibrate_threshold
from reunite.evaluation.camera_centring import centre_by_camera
from reunite.evaluation.confusions import BY_KIND, rank1_confusions
from reunite.evaluation.market1501 import Market1501Layout
from reunite.evaluation.rank import JUNK_PID, QueryScores, score_queries, top_matches, tpr_at_fpr
from reunite.evaluation.subgroups import (
    Subgroups,
    identity_attributes,
    query_subgroups,
    subgroup_metrics,
)
from reunite.evaluation.uncertainty import (
    DEFAULT_RESAMPLES,
    IdentityBootstrap,
    describe_uncertainty,
)
from reunite.models.attributes import Labels
from reunite.models.embedder import Embedder, cosine_distance

FPRS = (1e-3, 1e-4)
CMC_RANKS = (1, 5, 10, 20)
CURVE_RANKS = 50  # length of the stored CMC curve
TOP_K = 10  # matches kept per query for ranked-results sheets
_READ_BATCH = 256  # images held in memory at once while embedding

Crop = Path | np.ndarray
"""A crop file, or a BGR uint8 crop already in memory (cut from a video frame)."""
Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``, as the CLI's progress bars take it."""

log = logging.getLogger(__name__)


@dataclass
class EvalSet:
    """What one evaluation ranks: query and gallery crops, who they show, which camera saw them.

    ``protocol`` names the rules it is ranked under. ``exclude_same_camera`` applies the
    Market-1501 rule (a same-person gallery entry from the query's own camera is not a match);
    sets from a single camera turn it off. ``q_blocks`` and ``g_blocks``, when given, split the set
    into independent rankings (one per video sequence): a query is only ranked against the gallery
    of its own block. ``skipped`` lists images left out because they could not be read, and why.
    ``query_attributes`` / ``gallery_attributes``, on sets that describe their people's clothing,
    let the report say what tells each wrong rank-1 match apart (``confusions``).
    """

    name: str
    query: list[Crop]
    gallery: list[Crop]
    q_pids: np.ndarray
    g_pids: np.ndarray
    q_camids: np.ndarray
    g_camids: np.ndarray
    query_labels: list[str]
    gallery_labels: list[str]
    protocol: str = "market1501"
    exclude_same_camera: bool = True
    q_blocks: np.ndarray | None = None
    g_blocks: np.ndarray | None = None
    subgroups: Subgroups = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    # each image's person's true attributes, where the set describes them (identities.json)
    query_attributes: list[Labels | None] | None = None
    gallery_attributes: list[Labels | None] | None = None

    def sample_queries(self, count: int | None, seed: int = 0) -> EvalSet:
        """A seeded random sample of ``count`` queries (all if None or more); gallery unchanged.

        For a quick look: the gallery stays whole, so the ranking task is the same.
        """
        if count is None or count >= len(self.query):
            return self
        keep = np.sort(np.random.default_rng(seed).choice(len(self.query), count, replace=False))
        return replace(
            self,
            query=[self.query[i] for i in keep],
            q_pids=self.q_pids[keep],
            q_camids=self.q_camids[keep],
            query_labels=[self.query_labels[i] for i in keep],
            q_blocks=None if self.q_blocks is None else self.q_blocks[keep],
            query_attributes=(
                None if self.query_attributes is None else [self.query_attributes[i] for i in keep]
            ),
            subgroups={
                kind: {group: mask[keep] for group, mask in masks.items()}
                for kind, masks in self.subgroups.items()
            },
        )

    def blocks(self) -> tuple[np.ndarray, np.ndarray]:
        """Each query's and gallery crop's block; all 0 for a set ranked as a whole."""
        return (
            np.zeros(len(self.query), int) if self.q_blocks is None else self.q_blocks,
            np.zeros(len(self.gallery), int) if self.g_blocks is None else self.g_blocks,
        )

    def query_identities(self) -> list[tuple[int, int]]:
        """Who each query shows, as (block, pid): pids of separate blocks are different people."""
        return [(int(b), int(p)) for b, p in zip(self.blocks()[0], self.q_pids, strict=True)]

    @property
    def ids(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return self.q_pids, self.g_pids, self.q_camids, self.g_camids

    def check_scorable(self) -> None:
        """Fail before the (slow) embedding if no query could ever be scored."""
        q_blocks, g_blocks = self.blocks()
        cameras_of: dict[tuple[int, int], set[int]] = {}
        for block, pid, camid in zip(g_blocks, self.g_pids, self.g_camids, strict=True):
            cameras_of.setdefault((int(block), int(pid)), set()).add(int(camid))
        for block, pid, camid in zip(q_blocks, self.q_pids, self.q_camids, strict=True):
            cameras = cameras_of.get((int(block), int(pid)), set())
            if self.exclude_same_camera:
                cameras = cameras - {int(camid)}
            if pid != JUNK_PID and cameras:
                return
        where = " from another camera" if self.exclude_same_camera else ""
        raise DatasetLayoutError(
            f"no query of {self.name} has a gallery image of the same person{where}: "
            "nothing can be scored"
        )


@dataclass
class ModelResult:
    """One model's evaluation: figures, per-query scores and what each query's list shows.

    ``top_indices`` / ``top_distances`` (Q, TOP_K) are each query's nearest kept gallery entries
    (index -1 / NaN as padding). ``threshold`` is None for sets without cross-camera pairs.
    ``intervals`` (see ``uncertainty.describe_uncertainty``) is None when bootstrapping is off.
    """

    name: str
    metrics: dict[str, float | int]
    cmc: np.ndarray
    scores: QueryScores
    top_indices: np.ndarray
    top_distances: np.ndarray
    threshold: SamePersonThreshold | None
    subgroups: dict[str, dict[str, dict[str, float | int]]]
    intervals: dict | None = None
    confusions: dict | None = None  # see ``confusions.rank1_confusions``

    def to_json(self) -> dict:
        return {
            "metrics": self.metrics,
            "cmc": [round(float(v), 6) for v in self.cmc],
            "threshold": None if self.threshold is None else self.threshold.model_dump(),
            "subgroups": self.subgroups,
            "intervals": self.intervals,
            "confusions": self.confusions,
        }


def market_eval_set(layout: Market1501Layout, progress: Progress | None = None) -> EvalSet:
    """The test split (query against bounding_box_test) of a Market-1501 layout.

    Images that cannot be decoded are left out, named in ``skipped`` and logged: one bad file
    should not cost a whole evaluation run, but it must not go unnoticed either.
    """
    queries = list(layout.query)
    skipped: list[str] = []
    total = len(queries) + len(layout.gallery)
    kept, height_of = [], {}
    for done, image in enumerate([*queries, *layout.gallery], start=1):
        pixels = cv2.imread(str(image.path), cv2.IMREAD_COLOR)
        if pixels is None:
            skipped.append(f"{image.path.parent.name}/{image.path.name}: cannot be decoded")
            log.warning("skipping an unreadable image", extra={"path": str(image.path)})
        else:
            kept.append(image)
            height_of[image] = pixels.shape[0]
        if progress is not None and (done % 500 == 0 or done == total):
            progress("checking images", done, total)
    kept_set = set(kept)
    queries = [image for image in queries if image in kept_set]
    gallery = [image for image in layout.gallery if image in kept_set]
    if not queries:
        raise DatasetLayoutError(f"no readable query image in {layout.root / layout.QUERY_DIR}")
    if not gallery:
        raise DatasetLayoutError(f"no readable gallery image in {layout.root / layout.GALLERY_DIR}")
    people = identity_attributes(layout.root)
    return EvalSet(
        name=str(layout.root),
        query=[image.path for image in queries],
        gallery=[image.path for image in gallery],
        q_pids=np.array([image.pid for image in queries]),
        g_pids=np.array([image.pid for image in gallery]),
        q_camids=np.array([image.camid for image in queries]),
        g_camids=np.array([image.camid for image in gallery]),
        query_labels=[image.path.name for image in queries],
        gallery_labels=[image.path.name for image in gallery],
        subgroups=query_subgroups(layout.root, queries, [height_of[q] for q in queries]),
        skipped=skipped,
        query_attributes=None if people is None else [people.get(q.pid) for q in queries],
        gallery_attributes=None if people is None else [people.get(g.pid) for g in gallery],
    )


def evaluate_set(
    embedders: Sequence[Embedder],
    eval_set: EvalSet,
    rerank: bool = False,
    progress: Progress | None = None,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    centre_cameras: bool = False,
) -> list[ModelResult]:
    """Embed ``eval_set`` with each model and score it; models keep their order.

    Two models with the same name get " (2)", " (3)" appended so the results stay apart.
    With ``resamples`` > 0 each result carries bootstrap intervals over the query identities
    (seeded by ``seed``), and every model after the first its paired difference from the first.
    A set ranked per block (MOT17 sequences, pooled splits) is re-ranked block by block.
    With ``centre_cameras`` every figure, thresholds included, is on embeddings minus their
    camera's mean (``camera_centring``; a camera of one block is not that of another).
    Raises InvalidOptionError for negative ``resamples`` and DatasetLayoutError when the set
    cannot be scored.
    """
    if resamples < 0:
        raise InvalidOptionError(f"bootstrap resamples must be 0 (off) or more, got {resamples}")
    eval_set.check_scorable()
    results = [
        _evaluate_model(name, embedder, eval_set, rerank, progress, centre_cameras)
        for name, embedder in zip(_unique_names(embedders), embedders, strict=True)
    ]
    if resamples:
        bootstrap = IdentityBootstrap(eval_set.query_identities(), resamples, seed=seed)
        first = results[0]
        for result in results:
            baseline = None if result is first else (first.name, first.scores)
            result.intervals = describe_uncertainty(
                bootstrap, result.scores, eval_set.subgroups, baseline
            )
    return results


def evaluate_embedder(
    embedder: Embedder, layout: Market1501Layout, rerank: bool = False
) -> dict[str, float | int]:
    """Rank-k, mAP, mINP (fractions 0..1) and TPR at fixed FPRs with their distance thresholds.

    Keys: ``rank1 rank5 rank10 rank20 mAP mINP``, per FPR ``tpr@1e-3`` / ``thr@1e-3`` (a pair
    is "same person" when its cosine distance <= thr), ``num_query num_valid_query num_gallery``.
    """
    return evaluate_set([embedder], market_eval_set(layout), rerank)[0].metrics


def format_metrics_table(rows: dict[str, dict[str, float | int]]) -> str:
    """A Markdown table, one row per model; columns are the metric keys in first-seen order."""
    columns = list(dict.fromkeys(key for metrics in rows.values() for key in metrics))
    lines = [
        "| " + " | ".join(["model", *columns]) + " |",
        "|" + "---|" * (len(columns) + 1),
    ]
    for name, metrics in rows.items():
        cells = [format_cell(metrics.get(column)) for column in columns]
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


def _evaluate_model(
    name: str,
    embedder: Embedder,
    eval_set: EvalSet,
    rerank: bool,
    progress: Progress | None,
    centre_cameras: bool = False,
) -> ModelResult:
    query = _embed(embedder, eval_set.query, progress, f"{name}: query")
    gallery = _embed(embedder, eval_set.gallery, progress, f"{name}: gallery")
    if centre_cameras:
        query, gallery = centre_by_camera(query, gallery, *_camera_keys(eval_set))
    cosine = _blockwise(cosine_distance, query, gallery, eval_set)
    distmat = _blockwise(k_reciprocal_rerank, query, gallery, eval_set) if rerank else cosine
    ids = eval_set.ids
    exclude = eval_set.exclude_same_camera
    try:
        scores = score_queries(distmat, *ids, exclude_same_camera=exclude)
        ranks = scores.summarise(CURVE_RANKS)
        metrics: dict[str, float | int] = {f"rank{k}": ranks.rank(k) for k in CMC_RANKS}
        metrics |= {"mAP": ranks.mAP, "mINP": ranks.mINP}
        threshold = None
        if exclude:  # a same-camera set has no cross-camera pairs to calibrate an alert on
            for fpr, (tpr, thr) in tpr_at_fpr(cosine, *ids, fprs=FPRS).items():
                label = np.format_float_scientific(fpr, trim="-", exp_digits=1)
                metrics |= {f"tpr@{label}": tpr, f"thr@{label}": thr}
            threshold = calibrate_threshold(cosine, *ids, fpr=DEFAULT_FPR, data=eval_set.name)
    except ValueError as error:
        raise DatasetLayoutError(f"{eval_set.name}: {error}") from error
    metrics |= {
        "num_query": len(eval_set.query),
        "num_valid_query": ranks.num_valid_queries,
        "num_gallery": len(eval_set.gallery),
    }
    top_indices, top_distances = top_matches(distmat, *ids, k=TOP_K, exclude_same_camera=exclude)
    confusions = None
    if eval_set.query_attributes is not None and eval_set.gallery_attributes is not None:
        confusions = rank1_confusions(
            top_indices,
            scores.valid,
            eval_set.query_attributes,
            eval_set.gallery_attributes,
            eval_set.q_pids,
            eval_set.g_pids,
            eval_set.subgroups.get(BY_KIND),
        )
    return ModelResult(
        name=name,
        metrics=metrics,
        cmc=ranks.cmc,
        scores=scores,
        top_indices=top_indices,
        top_distances=top_distances,
        threshold=threshold,
        subgroups=subgroup_metrics(scores, eval_set.subgroups),
        confusions=confusions,
    )


def _blockwise(
    distance: Callable[[np.ndarray, np.ndarray], np.ndarray],
    query: np.ndarray,
    gallery: np.ndarray,
    eval_set: EvalSet,
) -> np.ndarray:
    """(Q, G) float32 ``distance`` of each block's queries to that block's gallery, infinite
    between blocks: pairs at an infinite distance are never compared (see ``rank``), so each block
    is its own ranking, its own re-ranking neighbourhoods and its own verification pairs."""
    if eval_set.q_blocks is None or eval_set.g_blocks is None:
        return distance(query, gallery).astype(np.float32, copy=False)
    out = np.full((len(query), len(gallery)), np.inf, dtype=np.float32)
    for block in np.unique(eval_set.q_blocks):
        rows = np.flatnonzero(eval_set.q_blocks == block)
        cols = np.flatnonzero(eval_set.g_blocks == block)
        if len(cols):
            out[np.ix_(rows, cols)] = distance(query[rows], gallery[cols])
    return out


def _camera_keys(eval_set: EvalSet) -> tuple[np.ndarray, np.ndarray]:
    """(block, camera) of every query and gallery crop."""
    q_blocks, g_blocks = eval_set.blocks()
    return (
        np.stack([q_blocks, eval_set.q_camids], axis=1),
        np.stack([g_blocks, eval_set.g_camids], axis=1),
    )


def _unique_names(embedders: Sequence[Embedder]) -> list[str]:
    seen: dict[str, int] = {}
    names = []
    for embedder in embedders:
        seen[embedder.name] = seen.get(embedder.name, 0) + 1
        count = seen[embedder.name]
        names.append(embedder.name if count == 1 else f"{embedder.name} ({count})")
    return names


def _embed(
    embedder: Embedder, crops: Sequence[Crop], progress: Progress | None, stage: str
) -> np.ndarray:
    out = np.empty((len(crops), embedder.dim), dtype=np.float32)
    for start in range(0, len(crops), _READ_BATCH):
        batch = [load_crop(crop) for crop in crops[start : start + _READ_BATCH]]
        out[start : start + len(batch)] = embedder.embed(batch)
        if progress is not None:
            progress(stage, start + len(batch), len(crops))
    return out


def load_crop(crop: Crop) -> np.ndarray:
    """The BGR uint8 image of a crop, reading it from disk if it is a path."""
    if isinstance(crop, np.ndarray):
        return crop
    image = cv2.imread(str(crop), cv2.IMREAD_COLOR)
    if image is None:
        raise DatasetLayoutError(f"cannot read image {crop}: corrupt or not an image")
    return image


def format_cell(value: float | int | None) -> str:
    """A table cell: fractions with three decimals, counts as they are, missing as blank."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)

"""The vectorised metrics against deliberately plain references, on many random cases.

Each reference below is a slow loop written straight from the protocol's definition, one query
and one gallery entry at a time. The random cases mix in everything the vectorised code must get
right: junk (pid -1), distractors (pid 0), same-person entries on the query's own camera, queries
with no valid match at all, negative distances, tied distances and both float widths.
"""

from __future__ import annotations

import numpy as np
import pytest

from reunite.evaluation import rank as rank_module
from reunite.evaluation.rank import (
    QueryScores,
    count_valid_pairs,
    evaluate_rank,
    score_queries,
    top_matches,
    tpr_at_fpr,
)

SEEDS = range(40)


def kept_entries(q, distmat, q_pids, g_pids, q_cams, g_cams, exclude_same_camera=True):
    """The query's gallery in rank order (ties: gallery order), junk and excluded entries out."""
    ranked = sorted(range(len(g_pids)), key=lambda g: (distmat[q, g], g))
    return [
        g
        for g in ranked
        if g_pids[g] != -1
        and not (exclude_same_camera and g_pids[g] == q_pids[q] and g_cams[g] == q_cams[q])
    ]


def brute_force_scores(distmat, q_pids, g_pids, q_cams, g_cams, exclude_same_camera=True):
    """Per query: (1-based rank of the first true match or 0, AP or NaN, INP or NaN)."""
    first_hits, aps, inps = [], [], []
    for q in range(len(q_pids)):
        kept = kept_entries(q, distmat, q_pids, g_pids, q_cams, g_cams, exclude_same_camera)
        hit_ranks = [r + 1 for r, g in enumerate(kept) if g_pids[g] == q_pids[q]]
        if not hit_ranks:
            first_hits.append(0)
            aps.append(np.nan)
            inps.append(np.nan)
            continue
        first_hits.append(hit_ranks[0])
        # precision at the i-th hit = i hits among the first hit_ranks[i-1] kept entries
        aps.append(sum((i + 1) / r for i, r in enumerate(hit_ranks)) / len(hit_ranks))
        inps.append(len(hit_ranks) / hit_ranks[-1])
    return np.array(first_hits), np.array(aps), np.array(inps)


def brute_force_cmc(first_hits: np.ndarray, max_rank: int) -> np.ndarray:
    valid = [f for f in first_hits if f > 0]
    return np.array([sum(f <= k for f in valid) / len(valid) for k in range(1, max_rank + 1)])


def random_case(seed: int, num_q: int = 30, num_g: int = 90):
    """Ids 1..8 (so most queries have matches), junk, distractors and 3 cameras.

    Odd seeds round distances to one decimal, so that many of them tie; every third seed is
    float64 (the float32 path uses a different sort).
    """
    rng = np.random.default_rng(seed)
    q_pids = rng.integers(1, 12, num_q)  # pids 9..11 are never in the gallery: no valid match
    g_pids = rng.integers(-1, 9, num_g)
    q_cams = rng.integers(1, 4, num_q)
    g_cams = rng.integers(1, 4, num_g)
    distmat = rng.random((num_q, num_g)) - 0.25
    if seed % 2:
        distmat = np.round(distmat, 1)
    return (
        distmat.astype(np.float64 if seed % 3 == 0 else np.float32),
        q_pids,
        g_pids,
        q_cams,
        g_cams,
    )


@pytest.mark.parametrize("exclude_same_camera", [True, False])
@pytest.mark.parametrize("seed", SEEDS)
def test_per_query_scores_match_the_brute_force_reference(seed, exclude_same_camera) -> None:
    case = random_case(seed)
    first_hit, ap, inp = brute_force_scores(*case, exclude_same_camera=exclude_same_camera)

    scores = score_queries(*case, exclude_same_camera=exclude_same_camera)

    np.testing.assert_array_equal(scores.first_hit, first_hit)
    np.testing.assert_allclose(scores.ap, ap, equal_nan=True)
    np.testing.assert_allclose(scores.inp, inp, equal_nan=True)
    assert (first_hit == 0).any() or seed % 2  # the cases do include unscorable queries


@pytest.mark.parametrize("seed", SEEDS)
def test_averaged_figures_match_the_brute_force_reference(seed: int) -> None:
    case = random_case(seed)
    first_hit, ap, inp = brute_force_scores(*case)

    result = evaluate_rank(*case, max_rank=15)

    assert result.num_valid_queries == (first_hit > 0).sum()
    assert result.num_queries == len(first_hit)
    np.testing.assert_allclose(result.cmc, brute_force_cmc(first_hit, 15))
    assert result.mAP == pytest.approx(np.nanmean(ap))
    assert result.mINP == pytest.approx(np.nanmean(inp))


@pytest.mark.parametrize("seed", range(10))
def test_subset_summary_equals_evaluating_only_those_queries(seed: int) -> None:
    case = random_case(seed)
    subset = np.random.default_rng(seed + 100).random(len(case[1])) < 0.5
    distmat, q_pids, g_pids, q_cams, g_cams = case
    alone = evaluate_rank(distmat[subset], q_pids[subset], g_pids, q_cams[subset], g_cams, 10)

    part = score_queries(*case).summarise(10, subset=subset)

    np.testing.assert_allclose(part.cmc, alone.cmc)
    assert part.mAP == pytest.approx(alone.mAP)
    assert (part.num_valid_queries, part.num_queries) == (alone.num_valid_queries, subset.sum())


def brute_force_tpr_at_fpr(distmat, q_pids, g_pids, q_cams, g_cams, fpr):
    """Sweep every threshold that can matter and keep the largest with FPR <= target."""
    positives, negatives = [], []
    for q in range(len(q_pids)):
        for g in kept_entries(q, distmat, q_pids, g_pids, q_cams, g_cams):
            (positives if g_pids[g] == q_pids[q] else negatives).append(distmat[q, g])
    negatives = np.array(negatives, dtype=distmat.dtype)
    # Between two distinct negative distances the FPR is constant, so the best threshold is just
    # below a negative distance (or infinite when every negative may pass).
    candidates = [np.inf, *np.nextafter(negatives, -np.inf)]
    best = max(t for t in candidates if np.mean(negatives <= t) <= fpr)
    return float(np.mean(np.array(positives) <= best)), float(best), len(positives), len(negatives)


@pytest.mark.parametrize("seed", range(20))
def test_tpr_at_fpr_matches_a_brute_force_threshold_sweep(seed: int) -> None:
    case = random_case(seed)
    fprs = (0.001, 0.01, 0.05, 0.29, 0.5)

    result = tpr_at_fpr(*case, fprs=fprs)

    for fpr in fprs:
        tpr, threshold, num_pos, num_neg = brute_force_tpr_at_fpr(*case, fpr)
        assert result[fpr] == (pytest.approx(tpr), threshold), fpr
    assert count_valid_pairs(*case) == (num_pos, num_neg)


def test_fpr_times_pair_count_rounding_does_not_lose_an_allowed_false_positive() -> None:
    # 0.29 * 100 is 28.999999999999996 in floating point; 29 false positives are allowed.
    negatives = np.arange(1, 101) / 100.0
    distmat = np.concatenate([[0.005], negatives])[None, :]
    g_pids = np.array([1] + [2] * 100)
    result = tpr_at_fpr(distmat, np.array([1]), g_pids, np.array([1]), np.full(101, 2), (0.29,))
    assert result[0.29][1] == np.nextafter(0.30, 0.0)  # just below the 30th negative


@pytest.mark.parametrize("exclude_same_camera", [True, False])
@pytest.mark.parametrize("seed", range(12))
def test_top_matches_list_the_first_kept_entries_in_rank_order(seed, exclude_same_camera) -> None:
    distmat, q_pids, g_pids, q_cams, g_cams = random_case(seed, num_g=40)
    distmat[:, ::7] = np.inf  # never-compared pairs are not shown either
    k = 25

    indices, distances = top_matches(
        distmat, q_pids, g_pids, q_cams, g_cams, k, exclude_same_camera=exclude_same_camera
    )

    for q in range(len(q_pids)):
        kept = kept_entries(q, distmat, q_pids, g_pids, q_cams, g_cams, exclude_same_camera)
        expected = [g for g in kept if np.isfinite(distmat[q, g])][:k]
        assert indices[q].tolist() == expected + [-1] * (k - len(expected))
        np.testing.assert_array_equal(distances[q, : len(expected)], distmat[q, expected])
        assert np.isnan(distances[q, len(expected) :]).all()


@pytest.mark.parametrize("exclude_same_camera", [True, False])
@pytest.mark.parametrize("seed", range(8))
def test_infinite_distances_between_blocks_equal_ranking_each_block_alone(
    seed: int, exclude_same_camera: bool
) -> None:
    # How the MOT17 sanity set ranks each sequence on its own inside one matrix.
    distmat, q_pids, g_pids, q_cams, g_cams = random_case(seed)
    rng = np.random.default_rng(seed)
    q_blocks, g_blocks = rng.integers(0, 3, len(q_pids)), rng.integers(0, 3, len(g_pids))
    order = np.argsort(q_blocks, kind="stable")
    per_block = QueryScores.concatenate(
        [
            score_queries(
                distmat[np.ix_(q_blocks == b, g_blocks == b)],
                q_pids[q_blocks == b],
                g_pids[g_blocks == b],
                q_cams[q_blocks == b],
                g_cams[g_blocks == b],
                exclude_same_camera=exclude_same_camera,
            )
            for b in range(3)
        ]
    )
    blocked = np.where(q_blocks[:, None] == g_blocks[None, :], distmat, np.inf)

    pooled = score_queries(
        blocked.astype(distmat.dtype),
        q_pids,
        g_pids,
        q_cams,
        g_cams,
        exclude_same_camera=exclude_same_camera,
    )

    np.testing.assert_array_equal(pooled.first_hit[order], per_block.first_hit)
    np.testing.assert_allclose(pooled.ap[order], per_block.ap, equal_nan=True)
    np.testing.assert_allclose(pooled.inp[order], per_block.inp, equal_nan=True)


def test_results_do_not_depend_on_how_queries_are_chunked(monkeypatch: pytest.MonkeyPatch) -> None:
    case = random_case(seed=11, num_q=40, num_g=120)
    whole = score_queries(*case)
    whole_tpr = tpr_at_fpr(*case, fprs=(0.01, 0.1))
    whole_top = top_matches(*case, k=5)

    monkeypatch.setattr(rank_module, "_CHUNK_ELEMENTS", 300)  # a few queries per chunk
    chunked = score_queries(*case)

    np.testing.assert_array_equal(chunked.first_hit, whole.first_hit)
    np.testing.assert_allclose(chunked.ap, whole.ap, equal_nan=True)
    np.testing.assert_allclose(chunked.inp, whole.inp, equal_nan=True)
    assert tpr_at_fpr(*case, fprs=(0.01, 0.1)) == whole_tpr
    for got, expected in zip(top_matches(*case, k=5), whole_top, strict=True):
        np.testing.assert_array_equal(got, expected)

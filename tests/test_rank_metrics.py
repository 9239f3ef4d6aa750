"""Specification of the re-ID metrics: Market-1501 CMC/mAP protocol, mINP and TPR at fixed FPR."""

from __future__ import annotations

import numpy as np
import pytest

from reunite.evaluation import rank as rank_module
from reunite.evaluation.rank import evaluate_rank, tpr_at_fpr

# Gallery shared by the hand-worked case: (pid, camid) per entry.
GALLERY_PIDS = np.array([1, -1, 0, 1, 2, 1, 2])
GALLERY_CAMS = np.array([1, 2, 2, 2, 2, 3, 1])


def hand_worked_case() -> tuple[np.ndarray, ...]:
    """Four queries over seven gallery entries; every number below is worked out by hand.

    Gallery: g0 pid 1 cam 1, g1 junk (-1) cam 2, g2 distractor (0) cam 2, g3 pid 1 cam 2,
             g4 pid 2 cam 2, g5 pid 1 cam 3, g6 pid 2 cam 1.

    q0 (pid 1, cam 1): g0 is the same person on the same camera -> excluded; g1 junk -> excluded.
       Ranked: g2 neg (0.3), g3 HIT (0.4), g4 neg (0.5), g5 HIT (0.6), g6 neg (0.7).
       First hit at rank 2; AP = (1/2 + 2/4) / 2 = 0.5; INP = 2 hits / last hit at 4 = 0.5.
    q1 (pid 2, cam 2): g4 same person same camera -> excluded; g1 junk -> excluded.
       Ranked: g6 HIT (0.3), g5, g2, g0, g3.  Rank 1; AP = 1; INP = 1/1 = 1.
    q2 (pid 3, cam 1): nobody with pid 3 in the gallery -> skipped, not counted.
    q3 (pid 2, cam 3): only junk g1 excluded; the distractor g2 is the nearest negative.
       Ranked: g2 neg (0.1), g3 neg (0.2), g5 neg (0.3), g6 HIT (0.4), g4 HIT (0.6), g0 neg (0.9).
       First hit at rank 4; AP = (1/4 + 2/5) / 2 = 0.325; INP = 2/5 = 0.4.

    Over the 3 valid queries: CMC = [1/3, 2/3, 2/3, 1, 1, ...];
    mAP = (0.5 + 1 + 0.325) / 3 = 0.608333...; mINP = (0.5 + 1 + 0.4) / 3 = 0.633333...
    """
    distmat = np.array(
        [
            [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7],
            [0.6, 0.1, 0.5, 0.7, 0.2, 0.4, 0.3],
            [0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5],
            [0.9, 0.8, 0.1, 0.2, 0.6, 0.3, 0.4],
        ]
    )
    q_pids = np.array([1, 2, 3, 2])
    q_cams = np.array([1, 2, 1, 3])
    return distmat, q_pids, GALLERY_PIDS, q_cams, GALLERY_CAMS


def test_hand_worked_case_gives_hand_computed_cmc_map_and_minp() -> None:
    result = evaluate_rank(*hand_worked_case(), max_rank=6)

    assert result.num_valid_queries == 3
    np.testing.assert_allclose(result.cmc, [1 / 3, 2 / 3, 2 / 3, 1, 1, 1])
    assert result.mAP == pytest.approx(1.825 / 3)
    assert result.mINP == pytest.approx(1.9 / 3)
    assert result.rank(1) == pytest.approx(1 / 3)
    assert result.rank(4) == 1.0


def test_same_camera_same_identity_gallery_entries_are_excluded() -> None:
    # The nearest entry is the query's own person on its own camera: it must not count as a hit.
    distmat = np.array([[0.1, 0.2, 0.3]])
    result = evaluate_rank(
        distmat, np.array([7]), np.array([7, 8, 7]), np.array([1]), np.array([1, 2, 2])
    )
    assert result.rank(1) == 0.0
    assert result.rank(2) == 1.0
    assert result.mAP == pytest.approx(0.5)


def test_same_identity_on_another_camera_is_a_true_match() -> None:
    distmat = np.array([[0.1, 0.2]])
    result = evaluate_rank(
        distmat, np.array([7]), np.array([7, 8]), np.array([1]), np.array([2, 1])
    )
    assert result.rank(1) == 1.0


def test_junk_gallery_entries_are_ignored_even_when_nearest() -> None:
    distmat = np.array([[0.1, 0.2, 0.3]])
    result = evaluate_rank(
        distmat, np.array([7]), np.array([-1, 7, 8]), np.array([1]), np.array([2, 2, 2])
    )
    assert result.rank(1) == 1.0
    assert result.mAP == 1.0


def test_distractors_with_pid_zero_count_as_negatives() -> None:
    distmat = np.array([[0.1, 0.2]])
    result = evaluate_rank(
        distmat, np.array([7]), np.array([0, 7]), np.array([1]), np.array([2, 2])
    )
    assert result.rank(1) == 0.0
    assert result.mAP == pytest.approx(0.5)


def test_queries_without_a_valid_match_are_skipped_and_counted() -> None:
    distmat = np.array([[0.1, 0.2], [0.3, 0.4]])
    # Query 1's only same-pid entry is on its own camera, so it cannot be scored.
    result = evaluate_rank(
        distmat, np.array([7, 8]), np.array([7, 8]), np.array([1, 1]), np.array([2, 1])
    )
    assert result.num_valid_queries == 1
    assert result.rank(1) == 1.0


def test_no_valid_query_at_all_is_an_error() -> None:
    with pytest.raises(ValueError, match="no query"):
        evaluate_rank(np.zeros((1, 1)), np.array([7]), np.array([8]), np.array([1]), np.array([2]))


def test_mismatched_array_lengths_are_an_error() -> None:
    with pytest.raises(ValueError, match="g_pids"):
        evaluate_rank(np.zeros((1, 2)), np.array([7]), np.array([7]), np.array([1]), np.array([2]))


def test_rank_k_outside_the_curve_is_an_error() -> None:
    result = evaluate_rank(*hand_worked_case(), max_rank=6)
    with pytest.raises(ValueError, match=r"1\.\.6"):
        result.rank(7)


def brute_force_rank(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_cams: np.ndarray,
    g_cams: np.ndarray,
    max_rank: int,
) -> tuple[np.ndarray, float, float, int]:
    """The protocol written as plainly as possible: one query at a time, one entry at a time."""
    cmc = np.zeros(max_rank)
    aps, inps = [], []
    for q in range(len(q_pids)):
        ranked = sorted(range(len(g_pids)), key=lambda g, q=q: distmat[q, g])
        kept = [
            g
            for g in ranked
            if g_pids[g] != -1 and not (g_pids[g] == q_pids[q] and g_cams[g] == q_cams[q])
        ]
        hits = [g_pids[g] == q_pids[q] for g in kept]
        if not any(hits):
            continue
        hit_ranks = [position + 1 for position, hit in enumerate(hits) if hit]
        first = hit_ranks[0]
        if first <= max_rank:
            cmc[first - 1 :] += 1
        aps.append(np.mean([(i + 1) / r for i, r in enumerate(hit_ranks)]))
        inps.append(len(hit_ranks) / hit_ranks[-1])
    return cmc / len(aps), float(np.mean(aps)), float(np.mean(inps)), len(aps)


def random_case(seed: int, num_q: int = 40, num_g: int = 120) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    q_pids = rng.integers(1, 15, num_q)
    g_pids = rng.integers(-1, 15, num_g)  # includes junk (-1) and distractors (0)
    q_cams = rng.integers(1, 4, num_q)
    g_cams = rng.integers(1, 4, num_g)
    # Negative distances and both float widths; odd seeds round to one decimal so that many
    # distances tie, which both sides must break the same way (gallery order).
    distmat = rng.random((num_q, num_g)) - 0.25
    if seed % 2:
        distmat = np.round(distmat, 1)
    return distmat.astype(np.float32 if seed % 3 else np.float64), q_pids, g_pids, q_cams, g_cams


@pytest.mark.parametrize("seed", range(6))
def test_evaluate_rank_matches_a_brute_force_reference_on_random_data(seed: int) -> None:
    case = random_case(seed)
    cmc, mean_ap, mean_inp, num_valid = brute_force_rank(*case, max_rank=10)

    result = evaluate_rank(*case, max_rank=10)

    assert result.num_valid_queries == num_valid
    np.testing.assert_allclose(result.cmc, cmc)
    assert result.mAP == pytest.approx(mean_ap)
    assert result.mINP == pytest.approx(mean_inp)


def test_results_do_not_depend_on_how_queries_are_chunked(monkeypatch: pytest.MonkeyPatch) -> None:
    case = random_case(seed=11)
    whole = evaluate_rank(*case)
    whole_tpr = tpr_at_fpr(*case, fprs=(0.01, 0.1))

    monkeypatch.setattr(rank_module, "_CHUNK_ELEMENTS", 300)  # a few queries per chunk
    chunked = evaluate_rank(*case)

    np.testing.assert_allclose(chunked.cmc, whole.cmc)
    assert chunked.mAP == pytest.approx(whole.mAP)
    assert chunked.mINP == pytest.approx(whole.mINP)
    assert tpr_at_fpr(*case, fprs=(0.01, 0.1)) == whole_tpr


def test_tpr_at_fpr_on_a_tiny_case() -> None:
    # One query (pid 1, cam 1). Gallery, by distance:
    #   0.05 junk -> excluded;  0.15 pid 1 on cam 1 -> excluded (would be a positive otherwise)
    #   positives (pid 1, cam 2): 0.1, 0.3, 0.5
    #   negatives: 0.2, 0.4, 0.6, 0.8 (pid 2) and 0.9 (distractor, pid 0) -> 5 negatives
    # FPR 0.2 allows 1 false positive: threshold just below 0.4, TPR = 2/3 (0.1, 0.3).
    # FPR 0.4 allows 2: threshold just below 0.6, TPR = 3/3.
    # FPR 0.1 allows 0.5, i.e. 0: threshold just below 0.2, TPR = 1/3.
    distances = [0.05, 0.15, 0.1, 0.3, 0.5, 0.2, 0.4, 0.6, 0.8, 0.9]
    g_pids = np.array([-1, 1, 1, 1, 1, 2, 2, 2, 2, 0])
    g_cams = np.array([2, 1, 2, 2, 2, 2, 2, 2, 2, 2])

    result = tpr_at_fpr(
        np.array([distances]), np.array([1]), g_pids, np.array([1]), g_cams, fprs=(0.2, 0.4, 0.1)
    )

    assert result[0.2] == (pytest.approx(2 / 3), np.nextafter(0.4, 0.0))
    assert result[0.4] == (1.0, np.nextafter(0.6, 0.0))
    assert result[0.1] == (pytest.approx(1 / 3), np.nextafter(0.2, 0.0))


def test_tpr_at_fpr_threshold_never_lets_tied_negatives_exceed_the_target() -> None:
    # Three negatives tie at 0.4: admitting any of them means FPR 3/4 > 0.5.
    distmat = np.array([[0.3, 0.4, 0.4, 0.4, 0.1, 0.45]])
    g_pids = np.array([2, 2, 2, 2, 1, 1])
    result = tpr_at_fpr(distmat, np.array([1]), g_pids, np.array([1]), np.full(6, 2), fprs=(0.5,))
    tpr, threshold = result[0.5]
    assert 0.3 <= threshold < 0.4
    assert tpr == 0.5


@pytest.mark.parametrize("seed", range(3))
def test_tpr_at_fpr_threshold_is_the_largest_meeting_the_target(seed: int) -> None:
    distmat, q_pids, g_pids, q_cams, g_cams = random_case(seed, num_q=30, num_g=200)
    valid = (g_pids[None, :] != -1) & ~(
        (q_pids[:, None] == g_pids[None, :]) & (q_cams[:, None] == g_cams[None, :])
    )
    positive = valid & (q_pids[:, None] == g_pids[None, :])
    negatives = distmat[valid & ~positive]

    for fpr, (tpr, threshold) in tpr_at_fpr(distmat, q_pids, g_pids, q_cams, g_cams).items():
        assert np.mean(negatives <= threshold) <= fpr
        next_negative = negatives[negatives > threshold].min()
        assert np.mean(negatives <= next_negative) > fpr
        assert tpr == pytest.approx(np.mean(distmat[positive] <= threshold))

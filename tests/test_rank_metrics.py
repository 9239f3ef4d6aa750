"""Specification of the re-ID metrics: Market-1501 CMC/mAP protocol, mINP, TPR at fixed FPR and
the calibrated same-person threshold, on cases small enough to work out by hand.

Random cases against brute-force references are in test_rank_bruteforce.py."""

from __future__ import annotations

import numpy as np
import pytest

from reunite.evaluation.calibration import calibrate_threshold
from reunite.evaluation.rank import evaluate_rank, score_queries, top_matches, tpr_at_fpr

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


def test_hand_worked_case_per_query_scores() -> None:
    # The same case query by query: q2 has no valid match (rank 0, AP and INP undefined).
    scores = score_queries(*hand_worked_case())

    assert scores.first_hit.tolist() == [2, 1, 0, 4]
    np.testing.assert_allclose(scores.ap, [0.5, 1.0, np.nan, 0.325], equal_nan=True)
    np.testing.assert_allclose(scores.inp, [0.5, 1.0, np.nan, 0.4], equal_nan=True)
    assert scores.valid.tolist() == [True, True, False, True]


def test_hand_worked_case_summary_of_a_subset_of_queries() -> None:
    # Queries q1 and q2 only: q2 is skipped, so the figures are q1's alone.
    subset = np.array([False, True, True, False])
    result = score_queries(*hand_worked_case()).summarise(max_rank=3, subset=subset)

    assert (result.num_valid_queries, result.num_queries) == (1, 2)
    np.testing.assert_allclose(result.cmc, [1, 1, 1])
    assert (result.mAP, result.mINP) == (1.0, 1.0)


def test_hand_worked_case_without_the_same_camera_rule() -> None:
    # As in one MOT17 sequence: q0 (pid 1, cam 1) now keeps g0 (pid 1, cam 1, 0.1) as a hit.
    # Ranked: g0 HIT (0.1), [g1 junk], g2 neg, g3 HIT, g4 neg, g5 HIT, g6 neg -> hits at 1, 3, 5.
    # AP = (1/1 + 2/3 + 3/5) / 3 = 0.755555...; INP = 3/5.
    # q1 (pid 2, cam 2) keeps g4 (0.2) and g6 (0.3) -> ranks 1 and 2: AP 1, INP 1.
    # q2 has no pid 3 anywhere; q3 is as before (it was never on a same-person camera).
    scores = score_queries(*hand_worked_case(), exclude_same_camera=False)

    assert scores.first_hit.tolist() == [1, 1, 0, 4]
    np.testing.assert_allclose(
        scores.ap, [(1 + 2 / 3 + 3 / 5) / 3, 1, np.nan, 0.325], equal_nan=True
    )
    np.testing.assert_allclose(scores.inp, [3 / 5, 1, np.nan, 0.4], equal_nan=True)


def test_hand_worked_case_top_matches_skip_junk_and_same_camera_entries() -> None:
    # q0 shows g2, g3, g4 (g0 same person same camera, g1 junk); q3 shows g2, g3, g5.
    indices, distances = top_matches(*hand_worked_case(), k=3)

    assert indices[0].tolist() == [2, 3, 4]
    assert indices[3].tolist() == [2, 3, 5]
    np.testing.assert_allclose(distances[0], [0.3, 0.4, 0.5])


def test_top_matches_pad_short_lists() -> None:
    # One kept entry only (the other is junk): the rest of the row is padding.
    indices, distances = top_matches(
        np.array([[0.2, 0.1]]), np.array([1]), np.array([2, -1]), np.array([1]), np.array([1, 1])
    )
    assert indices[0].tolist() == [0] + [-1] * 9
    assert np.isnan(distances[0, 1:]).all()


def test_pairs_at_an_infinite_distance_are_never_compared() -> None:
    # Gallery pids 2, 1, 1, 3. q0 (pid 1): g0 neg (0.1), g2 its person (0.3); g1 (its person) and
    # g3 are at inf -> out. One hit at rank 2: AP = INP = 1/2. (Were inf pairs ranked last, g1
    # would be a second hit at rank 3: AP = (1/2 + 2/3) / 2 = 7/12, INP = 2/3.)
    # q1 (pid 3): its only match g3 is at inf, so it has no comparable match and is skipped.
    distmat = np.array([[0.1, np.inf, 0.3, np.inf], [0.2, 0.5, 0.6, np.inf]])
    scores = score_queries(
        distmat, np.array([1, 3]), np.array([2, 1, 1, 3]), np.array([1, 1]), np.full(4, 2)
    )
    assert scores.first_hit.tolist() == [2, 0]
    assert (scores.ap[0], scores.inp[0]) == (0.5, 0.5)


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


def test_calibrated_threshold_of_the_tiny_case() -> None:
    # The tiny case above at FPR 0.2: 1 of 5 negatives may pass, so the threshold sits just below
    # the second-nearest negative (0.4) and 2 of the 3 positives pass; 8 pairs survive the rules.
    distances = [0.05, 0.15, 0.1, 0.3, 0.5, 0.2, 0.4, 0.6, 0.8, 0.9]
    g_pids = np.array([-1, 1, 1, 1, 1, 2, 2, 2, 2, 0])
    g_cams = np.array([2, 1, 2, 2, 2, 2, 2, 2, 2, 2])

    threshold = calibrate_threshold(
        np.array([distances]), np.array([1]), g_pids, np.array([1]), g_cams, fpr=0.2, data="tiny"
    )

    assert threshold.cosine_distance == np.nextafter(0.4, 0.0)
    assert threshold.tpr == pytest.approx(2 / 3)
    assert (threshold.pairs, threshold.positive_pairs, threshold.negative_pairs) == (8, 3, 5)
    assert threshold.model_dump()["data"] == "tiny"
    assert threshold.resolved  # 5 negatives x 0.2 = one false positive can be observed


def test_a_threshold_for_a_rarer_fpr_than_the_set_can_show_is_flagged() -> None:
    # 5 negatives cannot resolve FPR 1e-3: the threshold is below every negative seen.
    distmat = np.array([[0.1, 0.2, 0.3, 0.4, 0.5, 0.6]])
    g_pids = np.array([1, 2, 2, 2, 2, 2])
    threshold = calibrate_threshold(distmat, np.array([1]), g_pids, np.array([1]), np.full(6, 2))
    assert threshold.cosine_distance == np.nextafter(0.2, 0.0)
    assert not threshold.resolved


@pytest.mark.parametrize("fpr", [0.0, 1.0, -0.1])
def test_calibration_rejects_an_fpr_outside_zero_one(fpr: float) -> None:
    # FPR 0 would need a threshold below every distance; FPR 1 would alert on everybody.
    with pytest.raises(ValueError, match="fpr must be in"):
        calibrate_threshold(
            np.zeros((1, 2)), np.array([1]), np.array([1, 2]), np.array([1]), np.array([2, 2]), fpr
        )

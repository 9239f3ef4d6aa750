"""Detector counting against ground truth, on hand-made boxes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from reunite.errors import DatasetLayoutError
from reunite.evaluation.detection import DetectionCounts, iou_matrix, match_detections
from reunite.evaluation.mot import GtBox, read_mot_gt
from reunite.pipeline.detection import Detection


def person(x: float, y: float, w: float = 40, h: float = 100, **fields: object) -> GtBox:
    values: dict = {"consider": True, "cls": 1, "visibility": 1.0} | fields
    return GtBox(frame=1, track_id=1, x=x, y=y, w=w, h=h, **values)


def det(x: float, y: float, w: float = 40, h: float = 100, score: float = 0.9) -> Detection:
    return Detection(x, y, x + w, y + h, score)


def test_iou_matrix_of_identical_disjoint_and_half_overlapping_boxes() -> None:
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [5, 0, 15, 10]])
    np.testing.assert_allclose(iou_matrix(a, b), [[1.0, 0.0, 1 / 3]])
    assert iou_matrix(np.zeros((0, 4)), b).shape == (0, 3)


def test_perfect_match_is_one_true_positive() -> None:
    counts = match_detections([det(100, 100)], [person(100, 100)])
    assert counts == DetectionCounts(tp=1, fp=0, fn=0)
    assert counts.recall == counts.precision == 1.0


def test_box_shifted_below_iou_threshold_is_a_false_positive_and_a_miss() -> None:
    # Shifted by half its width: IoU = 20 * 100 / (2 * 4000 - 2000) = 1/3.
    assert match_detections([det(120, 100)], [person(100, 100)]) == DetectionCounts(0, 1, 1)


def test_duplicate_detections_of_one_person_give_one_true_and_one_false_positive() -> None:
    dets = [det(101, 100, score=0.6), det(100, 100, score=0.8)]
    assert match_detections(dets, [person(100, 100)]) == DetectionCounts(tp=1, fp=1, fn=0)


def test_higher_score_claims_the_person_first() -> None:
    gts = [person(100, 100), person(400, 100)]
    dets = [det(100, 100, score=0.9), det(104, 100, score=0.95), det(400, 100, score=0.5)]
    assert match_detections(dets, gts) == DetectionCounts(tp=2, fp=1, fn=0)


def test_detections_on_ignore_regions_are_neither_true_nor_false_positives() -> None:
    gts = [
        person(0, 0, consider=False),
        person(100, 0, cls=7),  # a static person
        person(200, 0, visibility=0.3),
        person(300, 0, h=30),
    ]
    dets = [det(0, 0), det(100, 0), det(102, 0), det(200, 0), det(300, 0, h=30)]
    counts = match_detections(dets, gts, min_height=50, min_visibility=0.5)
    assert counts == DetectionCounts(tp=0, fp=0, fn=0)
    assert math.isnan(counts.recall) and math.isnan(counts.precision)


def test_filters_decide_which_people_must_be_found() -> None:
    gts = [person(0, 0, h=30), person(100, 0, visibility=0.5), person(200, 0, visibility=0.51)]
    assert match_detections([], gts) == DetectionCounts(tp=0, fp=0, fn=3)
    assert match_detections([], gts, min_height=50) == DetectionCounts(0, 0, 2)
    # Visibility must exceed the threshold, as in the usual "visibility > 0.5".
    assert match_detections([], gts, min_visibility=0.5) == DetectionCounts(0, 0, 2)


def test_counted_person_wins_over_an_ignore_region_under_the_same_detection() -> None:
    gts = [person(100, 100, consider=False), person(100, 100)]
    assert match_detections([det(100, 100)], gts) == DetectionCounts(tp=1, fp=0, fn=0)


def test_counts_add_up_over_frames() -> None:
    total = DetectionCounts(tp=3, fp=1, fn=1) + DetectionCounts(tp=1, fp=0, fn=3)
    assert total == DetectionCounts(tp=4, fp=1, fn=4)
    assert total.recall == 0.5 and total.precision == 0.8


def test_read_mot_gt_groups_boxes_by_frame(tmp_path) -> None:
    gt = tmp_path / "gt.txt"
    gt.write_text("1,1,912,484,97,109,0,7,1.0\n1,2,10,20,30,40,1,1,0.5\n2,2,11,20,30,40,1,1,0.6\n")
    boxes = read_mot_gt(gt)
    assert sorted(boxes) == [1, 2]
    assert boxes[1][1] == GtBox(1, 2, 10.0, 20.0, 30.0, 40.0, True, 1, 0.5)
    assert boxes[1][0].consider is False and boxes[1][0].cls == 7
    assert boxes[2][0].as_xyxy() == (11.0, 20.0, 41.0, 60.0)


def test_read_mot_gt_names_the_bad_line(tmp_path) -> None:
    gt = tmp_path / "gt.txt"
    gt.write_text("1,1,912,484,97,109,0,7,1.0\n1,2,10,20\n")
    with pytest.raises(DatasetLayoutError, match=r"gt\.txt:2"):
        read_mot_gt(gt)
    with pytest.raises(DatasetLayoutError, match="not found"):
        read_mot_gt(tmp_path / "missing.txt")

"""Detector recall and precision against MOTChallenge ground truth: pure functions, no I/O.

Ground-truth boxes the evaluation does not ask about (flag 0, not a pedestrian, too small, too
occluded) are *ignore regions*, as in the MOTChallenge and COCO protocols: a detector is neither
rewarded for finding a static person or a heavily occluded one nor punished for it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from reunite.evaluation.mot import PEDESTRIAN_CLASS, GtBox
from reunite.pipeline.detection import Detection


@dataclass(frozen=True, slots=True)
class DetectionCounts:
    """True positives, false positives and misses; add them up over frames with ``+``."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    def __add__(self, other: DetectionCounts) -> DetectionCounts:
        return DetectionCounts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn)

    @property
    def recall(self) -> float:
        """Share of counted people found; NaN when there were none to find."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else math.nan

    @property
    def precision(self) -> float:
        """Share of counted detections that are people; NaN when nothing was detected."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else math.nan


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box in ``a`` (N, 4) with every box in ``b`` (M, 4), xyxy."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def is_counted(gt: GtBox, min_height: float = 0, min_visibility: float = 0.0) -> bool:
    """Whether a ground-truth box is a person the detector must find (else an ignore region).

    Visibility must *exceed* ``min_visibility`` (the usual "visibility > 0.5" filter), so with the
    default a fully occluded person is ignored.
    """
    return (
        gt.consider
        and gt.cls == PEDESTRIAN_CLASS
        and gt.h >= min_height
        and gt.visibility > min_visibility
    )


def match_detections(
    dets: Sequence[Detection],
    gts: Sequence[GtBox],
    iou: float = 0.5,
    min_height: float = 0,
    min_visibility: float = 0.0,
) -> DetectionCounts:
    """Count one frame's detections against its ground truth.

    Greedy by score, as COCO does: each detection, best first, takes the unmatched counted person
    it overlaps most at IoU >= ``iou`` (a true positive). Failing that, a detection overlapping an
    ignore region at IoU >= ``iou`` is dropped uncounted (any number may fall on one region);
    anything else, duplicates of a person already found included, is a false positive. Counted
    people left unmatched are misses.
    """
    counted = [g for g in gts if is_counted(g, min_height, min_visibility)]
    ignored = [g for g in gts if not is_counted(g, min_height, min_visibility)]
    order = sorted(dets, key=lambda d: -d.score)
    det_boxes = np.array([(d.x1, d.y1, d.x2, d.y2) for d in order], np.float64)
    iou_counted = iou_matrix(det_boxes, np.array([g.as_xyxy() for g in counted]))
    iou_ignored = iou_matrix(det_boxes, np.array([g.as_xyxy() for g in ignored]))
    taken = np.zeros(len(counted), bool)
    tp = fp = 0
    for row, overlaps in enumerate(iou_counted):
        candidates = np.where(taken | (overlaps < iou), -1.0, overlaps)
        if len(candidates) and candidates.max() >= 0:
            taken[candidates.argmax()] = True
            tp += 1
        elif not (iou_ignored.shape[1] and iou_ignored[row].max() >= iou):
            fp += 1
    return DetectionCounts(tp=tp, fp=fp, fn=len(counted) - tp)

"""YOLOX-nano person detection on real MOT17 frames from ../shared, plus its model-free contract."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import cv2
import numpy as np
import pytest

from reunite.errors import InvalidOptionError
from reunite.evaluation.detection import DetectionCounts, match_detections
from reunite.evaluation.mot import find_mot_sequences
from reunite.pipeline.detection import (
    Detection,
    DetectorModelError,
    OnnxYoloxDetector,
    tile_spans,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
MODEL = SHARED / "models" / "yolox_nano" / "yolox_nano.onnx"
MOT17 = SHARED / "data" / "real" / "mot17_mini" / "train"
needs_shared = pytest.mark.skipif(
    not (MODEL.is_file() and MOT17.is_dir()),
    reason=f"needs the real YOLOX-nano model and MOT17-mini frames in {SHARED} (absent)",
)


def test_detection_reports_its_size_and_mot_style_box() -> None:
    box = Detection(10.0, 20.0, 50.0, 120.0, 0.9)
    assert (box.width, box.height) == (40.0, 100.0)
    assert box.as_xywh() == (10.0, 20.0, 40.0, 100.0)


def test_tiles_cover_the_frame_and_overlap_by_the_asked_share() -> None:
    spans = tile_spans(1920, 3, 0.2)
    assert spans[0][0] == 0 and spans[-1][1] == 1920
    for (_, end), (start, next_end) in pairwise(spans):
        assert end - start == pytest.approx(0.2 * (next_end - start), abs=1)
    assert tile_spans(1080, 1, 0.2) == [(0, 1080)]


def test_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DetectorModelError, match="not found"):
        OnnxYoloxDetector(tmp_path / "absent.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(DetectorModelError, match="cannot load"):
        OnnxYoloxDetector(tmp_path / "junk.onnx")


@pytest.fixture(scope="module")
def first_frames() -> list[tuple[np.ndarray, list]]:
    """Frame 1 of every MOT17-mini sequence with its ground truth."""
    return [(cv2.imread(str(s.frames[1])), s.gt[1]) for s in find_mot_sequences(MOT17)]


def count(detector: OnnxYoloxDetector, frames: list[tuple[np.ndarray, list]]) -> DetectionCounts:
    total = DetectionCounts()
    for image, gts in frames:
        total += match_detections(detector.detect(image), gts, iou=0.5, min_visibility=0.5)
    return total


@needs_shared
@pytest.mark.shared
def test_native_416_matches_the_recall_and_precision_measured_in_shared_readme(
    first_frames: list,
) -> None:
    counts = count(OnnxYoloxDetector(MODEL), first_frames)
    assert counts.tp + counts.fn == 89  # visible pedestrians on frame 1, as the README counts
    assert counts.recall == pytest.approx(0.46, abs=0.1)
    assert counts.precision > 0.8


@needs_shared
@pytest.mark.shared
def test_tiling_finds_more_people_than_the_full_frame_alone(first_frames: list) -> None:
    native = count(OnnxYoloxDetector(MODEL), first_frames)
    tiled = count(OnnxYoloxDetector(MODEL, tile=True), first_frames)
    assert tiled.recall > native.recall + 0.1


@needs_shared
@pytest.mark.shared
def test_static_model_refuses_another_input_size() -> None:
    with pytest.raises(InvalidOptionError, match="static 416x416"):
        OnnxYoloxDetector(MODEL, input_size=640)

"""The tiny district checked in under data/samples/ stays readable and consistent (no rendering)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest

from reunite.evaluation.mot import find_mot_sequences

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples" / "district"


def test_samples_are_small_enough_to_live_in_the_repository():
    size = sum(p.stat().st_size for p in SAMPLES.rglob("*") if p.is_file())
    assert 0 < size < 5 * 2**20


def test_sample_sequences_load_as_motchallenge_with_boxes_inside_frames():
    sequences = find_mot_sequences(SAMPLES / "cameras")
    cameras = json.loads((SAMPLES / "cameras.json").read_text())
    assert len(sequences) == len(cameras) >= 2
    boxes = 0
    for seq in sequences:
        height, width = cv2.imread(str(next(iter(seq.frames.values())))).shape[:2]
        for frame, gts in seq.gt.items():
            assert frame in seq.frames
            for b in gts:
                boxes += 1
                assert 0 <= b.x <= b.x + b.w <= width
                assert 0 <= b.y <= b.y + b.h <= height
                assert 0.0 <= b.visibility <= 1.0
    assert boxes > 0


def test_sample_case_photos_exist_for_children_and_elderly():
    people = json.loads((SAMPLES / "identities.json").read_text())
    cases = json.loads((SAMPLES / "cases.json").read_text())
    subjects = {p["id"] for p in people if p["age_group"] in ("child", "elderly")}
    assert subjects == {c["person_id"] for c in cases}
    for case in cases:
        assert cv2.imread(str(SAMPLES / case["family_photo"])) is not None
        assert cv2.imread(str(SAMPLES / case["last_seen"])) is not None


@pytest.mark.shared
def test_a_real_person_detector_finds_the_synthetic_people(shared_dir: Path):
    """YOLOX-nano (trained on real COCO photos) must see our people as people: on real MOT17
    frames it finds about 45 % of pedestrians at its native input, so ask for at least that."""
    from reunite.evaluation.detection import DetectionCounts, match_detections
    from reunite.pipeline.detection import OnnxYoloxDetector

    detector = OnnxYoloxDetector(shared_dir / "models" / "yolox_nano" / "yolox_nano.onnx")
    counts = DetectionCounts()
    for seq in find_mot_sequences(SAMPLES / "cameras"):
        for frame, path in seq.frames.items():
            dets = detector.detect(cv2.imread(str(path)))
            counts = counts + match_detections(
                dets, seq.gt.get(frame, []), iou=0.5, min_height=48, min_visibility=0.5
            )
    assert counts.tp + counts.fn >= 20
    assert counts.recall >= 0.45
    assert counts.precision >= 0.7

"""The default detector (MOG2 background subtraction) on the checked-in sample district and on
made-up scenes. Bad input tried: a scene with nobody, a sudden global brightness change, a frame
of another size than the background, a greyscale frame, an empty array."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from reunite.errors import InvalidOptionError
from reunite.evaluation.detection import DetectionCounts, match_detections
from reunite.evaluation.mot import load_mot_sequence
from reunite.pipeline.background import BackgroundSubtractionDetector

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples" / "district" / "cameras"


def scene(rng: np.random.Generator, size=(360, 640)) -> np.ndarray:
    """A textured static background (pavement-like noise, blurred)."""
    base = rng.integers(90, 170, (*size, 3), dtype=np.uint8)
    return cv2.GaussianBlur(base, (7, 7), 0)


def with_person(background: np.ndarray, x: int, y: int, h: int = 120) -> np.ndarray:
    frame = background.copy()
    w = h // 3
    cv2.ellipse(frame, (x, y - h // 2), (w // 2, h // 2), 0, 0, 360, (40, 30, 160), -1)
    cv2.circle(frame, (x, y - h - 8), 10, (60, 80, 120), -1)
    return frame


def test_finds_the_people_of_the_sample_district():
    counts = DetectionCounts()
    for camera in sorted(SAMPLES.iterdir()):
        seq = load_mot_sequence(camera)
        frames = [cv2.imread(str(p)) for _, p in sorted(seq.frames.items())]
        detector = BackgroundSubtractionDetector()
        detector.warm_up(frames[:10])
        for number, frame in zip(sorted(seq.frames), frames, strict=True):
            found = detector.detect(frame)
            assert all(0 < d.score <= 1 for d in found)
            counts += match_detections(
                found, seq.gt.get(number, []), iou=0.5, min_height=24, min_visibility=0.5
            )
    assert counts.tp + counts.fn > 10
    assert counts.recall >= 0.6 and counts.precision >= 0.6, counts


def test_a_walking_shape_is_found_and_an_empty_scene_gives_nothing():
    rng = np.random.default_rng(0)
    background = scene(rng)
    detector = BackgroundSubtractionDetector()
    detector.warm_up([background] * 10)
    assert detector.detect(background) == []
    found = []
    for step in range(6):
        found = detector.detect(with_person(background, 150 + 60 * step, 300))
    assert len(found) == 1
    box = found[0]
    assert 390 <= (box.x1 + box.x2) / 2 <= 510 and box.height >= 100


def test_a_global_brightness_jump_is_relearnt_not_reported():
    rng = np.random.default_rng(1)
    background = scene(rng)
    detector = BackgroundSubtractionDetector()
    detector.warm_up([background] * 10)
    brighter = cv2.convertScaleAbs(background, alpha=1.0, beta=70)
    for _ in range(3):
        assert detector.detect(brighter) == []


def test_another_frame_size_or_a_grey_frame_does_not_crash():
    rng = np.random.default_rng(2)
    detector = BackgroundSubtractionDetector()
    detector.warm_up([scene(rng)] * 10)
    assert detector.detect(scene(rng, (480, 848))) == []  # a new size: background learnt again
    grey = cv2.cvtColor(scene(rng), cv2.COLOR_BGR2GRAY)
    with pytest.raises(InvalidOptionError, match="BGR"):
        detector.detect(grey)
    with pytest.raises(InvalidOptionError):
        detector.detect(np.zeros((0, 0, 3), np.uint8))

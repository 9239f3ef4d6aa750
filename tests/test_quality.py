"""Crop quality: the ranking the pipeline uses to keep a tracklet's best crops, and crop cutting."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from reunite.evaluation.mot import load_mot_sequence
from reunite.pipeline.detection import Detection
from reunite.pipeline.quality import CropQuality, crop_quality, cut_crop

FRAME_W, FRAME_H = 1280, 720


def person_image(height: int, width: int) -> np.ndarray:
    """A person-like picture whose detail scales with its size: coloured bands with edges."""
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, size=(16, 6, 3), dtype=np.uint8)
    return cv2.resize(base, (width, height), interpolation=cv2.INTER_NEAREST)


def frame_with(person: np.ndarray, x: int, y: int) -> tuple[np.ndarray, Detection]:
    """A grey frame with ``person`` pasted at (x, y), and that person's box."""
    frame = np.full((FRAME_H, FRAME_W, 3), 120, np.uint8)
    h, w = person.shape[:2]
    frame[y : y + h, x : x + w] = person
    return frame, Detection(x, y, x + w, y + h, 0.9)


def test_bigger_crops_score_higher():
    small_frame, small = frame_with(person_image(60, 24), 300, 200)
    big_frame, big = frame_with(person_image(160, 64), 300, 200)
    small_q, big_q = crop_quality(small_frame, small, []), crop_quality(big_frame, big, [])
    assert small_q.height_px == 60 and big_q.height_px == 160
    assert big_q.score > small_q.score + 0.2


def test_blurred_crops_score_lower():
    frame, box = frame_with(person_image(160, 64), 300, 200)
    blurred = frame.copy()
    blurred[200:360, 300:364] = cv2.GaussianBlur(frame[200:360, 300:364], (0, 0), 4)
    sharp_q, blur_q = crop_quality(frame, box, []), crop_quality(blurred, box, [])
    assert sharp_q.sharpness > 5 * blur_q.sharpness
    assert sharp_q.score > blur_q.score + 0.2


def test_sharpness_does_not_depend_on_crop_size():
    # The same picture at 128 and 256 px tall: after resizing to a fixed height they match.
    frame_a, box_a = frame_with(person_image(128, 48), 100, 100)
    frame_b, box_b = frame_with(person_image(256, 96), 100, 100)
    a, b = crop_quality(frame_a, box_a, []).sharpness, crop_quality(frame_b, box_b, []).sharpness
    assert a == pytest.approx(b, rel=0.25)


def test_occlusion_is_the_covered_fraction_of_the_box_counted_once():
    frame, box = frame_with(person_image(160, 64), 300, 200)
    left_half = Detection(250, 150, 332, 400, 0.8)  # covers x 300..332: half the box
    overlapping = Detection(310, 150, 340, 400, 0.8)  # inside the same half, partly beyond it
    far = Detection(900, 100, 950, 250, 0.8)
    quality = crop_quality(frame, box, [left_half, overlapping, far])
    assert quality.occlusion == pytest.approx(0.5 + 8 / 64)  # union 300..340 of 300..364
    assert crop_quality(frame, box, [far]).occlusion == 0.0


def test_occluded_crops_score_lower_in_proportion():
    frame, box = frame_with(person_image(160, 64), 300, 200)
    clear = crop_quality(frame, box, [])
    hidden = crop_quality(frame, box, [Detection(250, 150, 332, 400, 0.8)])
    assert hidden.score == pytest.approx(clear.score * 0.5)


def test_the_box_itself_among_others_is_not_an_occluder():
    # Callers pass every detection of the frame; the box must not count as covering itself.
    frame, box = frame_with(person_image(160, 64), 300, 200)
    same_values = Detection(box.x1, box.y1, box.x2, box.y2, box.score)
    assert crop_quality(frame, box, [box, same_values]).occlusion == 0.0


def test_boxes_touching_the_frame_border_are_truncated_and_score_lower():
    inside_frame, inside = frame_with(person_image(160, 64), 300, 200)
    edge_frame, edge = frame_with(person_image(160, 64), 0, 200)
    bottom_frame, bottom = frame_with(person_image(160, 64), 300, FRAME_H - 160)
    inside_q = crop_quality(inside_frame, inside, [])
    for frame, box in ((edge_frame, edge), (bottom_frame, bottom)):
        quality = crop_quality(frame, box, [])
        assert quality.truncated
        assert quality.score == pytest.approx(inside_q.score * 0.6, rel=0.05)
    assert not inside_q.truncated


def test_a_square_box_scores_lower_than_a_person_shaped_one():
    # Bad input: a box as wide as it is tall (two people merged, or a car).
    frame, person = frame_with(person_image(160, 64), 300, 200)
    square = Detection(300, 200, 460, 360, 0.9)
    frame[200:360, 300:460] = person_image(160, 160)
    assert crop_quality(frame, square, []).score < 0.85 * crop_quality(frame, person, []).score


@pytest.mark.parametrize(
    "box",
    [
        Detection(2000, 100, 2100, 300, 0.9),  # wholly right of the frame
        Detection(-300, -300, -100, -50, 0.9),  # wholly above-left of it
        Detection(100, 100, 100, 300, 0.9),  # zero width
        Detection(100, 300, 160, 100, 0.9),  # negative height
        Detection(float("nan"), 100, 160, 300, 0.9),  # not a number
    ],
)
def test_boxes_without_pixels_in_the_frame_score_zero_and_cannot_be_cut(box):
    # Bad input: boxes that cannot be cut. crop_quality answers 0 (ranking leaves them out);
    # cut_crop refuses them with a clear error.
    frame, _ = frame_with(person_image(160, 64), 300, 200)
    assert crop_quality(frame, box, []).score == 0.0
    with pytest.raises(ValueError, match="no pixel inside the 1280x720 frame"):
        cut_crop(frame, box)


def test_scores_stay_in_zero_to_one():
    frame, box = frame_with(person_image(400, 150), 300, 100)
    quality = crop_quality(frame, box, [])
    assert isinstance(quality, CropQuality)
    assert 0.9 <= quality.score <= 1.0  # tall, sharp, unoccluded, person-shaped


def test_cut_crop_pads_clips_and_copies():
    frame, box = frame_with(person_image(160, 60), 300, 200)
    crop = cut_crop(frame, box, pad=0.05)
    assert crop.shape == (176, 66, 3)  # 160 + 2 * 8 rows, 60 + 2 * 3 columns
    crop[:] = 0
    assert frame[200:360, 300:360].any()  # the frame is untouched
    corner = cut_crop(frame, Detection(-20, -20, 40, 100, 0.9), pad=0.1)
    assert corner.shape == (112, 46, 3)  # clipped at 0: y to 100 + 12, x to 40 + 6
    assert cut_crop(frame, box, pad=0.0).shape == (160, 60, 3)


def test_bad_frames_are_refused():
    # Bad input: a grey frame and a float frame where a BGR uint8 image is expected.
    box = Detection(10, 10, 50, 110, 0.9)
    for frame in (np.zeros((100, 100), np.uint8), np.zeros((100, 100, 3), np.float32)):
        with pytest.raises(ValueError, match="HxWx3 uint8"):
            crop_quality(frame, box, [])
        with pytest.raises(ValueError, match="HxWx3 uint8"):
            cut_crop(frame, box)


@pytest.mark.shared
def test_scores_follow_ground_truth_visibility_on_real_mot17_frames(shared_dir: Path):
    # Real footage: across the first frame of each MOT17-mini sequence, the score and the occlusion
    # estimated from boxes alone must agree with MOTChallenge's annotated visibility (measured
    # correlations over 134 pedestrians: 0.55 and -0.48).
    scores, occlusions, visibility = [], [], []
    for folder in sorted((shared_dir / "data/real/mot17_mini/train").iterdir()):
        sequence = load_mot_sequence(folder)
        first = min(sequence.frames)
        frame = cv2.imread(str(sequence.frames[first]))
        people = [b for b in sequence.gt[first] if b.cls == 1 and b.consider]
        boxes = [Detection(*b.as_xyxy(), 1.0) for b in people]
        for person, box in zip(people, boxes, strict=True):
            quality = crop_quality(frame, box, boxes)
            scores.append(quality.score)
            occlusions.append(quality.occlusion)
            visibility.append(person.visibility)
    assert len(scores) > 100
    assert np.corrcoef(scores, visibility)[0, 1] > 0.4
    assert np.corrcoef(occlusions, visibility)[0, 1] < -0.35

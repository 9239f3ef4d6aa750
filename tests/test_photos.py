"""Photo intake without a server: finding the person to search for.

Bad input tried: a box off the photo, a box of a few pixels, a tall photo of one flat colour
(person-shaped but nothing in it), a wide photo with nobody.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from reunite.errors import BadImageError, NoPersonFoundError
from reunite.pipeline.detection import Detection
from reunite.pipeline.photos import body_from_face, clean_photo, find_person


def textured(height: int, width: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (height, width, 3), dtype=np.uint8)


def test_the_operators_box_wins_and_is_clipped_to_the_photo():
    found = find_person(textured(400, 300), box=(-20, 10, 150, 500))
    assert found.found_by == "box"
    assert (found.box.x1, found.box.y1, found.box.x2, found.box.y2) == (0, 10, 150, 400)
    with pytest.raises(NoPersonFoundError, match="too small"):
        find_person(textured(400, 300), box=(500, 500, 600, 600))


def test_a_person_crop_is_used_whole_but_a_flat_or_wide_photo_is_refused():
    assert find_person(textured(200, 80)).found_by == "whole"
    with pytest.raises(NoPersonFoundError, match="no person found"):
        find_person(np.full((200, 80, 3), 90, np.uint8))
    with pytest.raises(NoPersonFoundError, match="give the person's box"):
        find_person(np.full((300, 900, 3), 90, np.uint8))


def test_a_body_is_drawn_below_a_face_and_kept_on_the_photo():
    body = body_from_face(Detection(100, 50, 140, 100, 1.0), width=400, height=300)
    assert body.y1 < 50 and body.y2 == 300  # from just above the face to the photo's edge
    assert body.x1 == pytest.approx(60) and body.x2 == pytest.approx(180)  # three faces wide


def test_a_photo_too_small_to_show_anyone_is_refused():
    tiny = cv2.imencode(".png", textured(20, 10))[1].tobytes()
    with pytest.raises(BadImageError, match="at least 16x32"):
        clean_photo(tiny)

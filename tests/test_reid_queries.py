"""Which crops of a synthetic re-ID test split become queries: clear views of the whole person.

Hand-made crops (no rendering): each crop's height tells which one was written where, and its
grey level its visibility.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from reunite.synth.reid_job import QUERY_VISIBILITY, _Crop, _write_cohort


def _crop(pid: int, cam: int, height: int, visibility: float, frame: int) -> _Crop:
    image = np.full((height, height // 2, 3), round(visibility * 200), np.uint8)
    return _Crop(pid, cam, seq=1, frame=frame, image=image, visibility=visibility, split="test")


def _write(tmp_path: Path, crops: list[_Crop]) -> dict[str, list[tuple[int, int]]]:
    """Write one test cohort; per folder, the (camera, crop height) of every image."""
    for name in ("bounding_box_test", "query"):
        (tmp_path / name).mkdir(exist_ok=True)
    counts = dict.fromkeys(
        ("train_images", "gallery_images", "query_images", "junk", "distractors"), 0
    )
    _write_cohort(tmp_path, crops, "test", np.random.default_rng(0), counts)
    written = {}
    for name in ("bounding_box_test", "query"):
        written[name] = sorted(
            (int(f.name.split("_c")[1][0]), cv2.imread(str(f)).shape[0])
            for f in (tmp_path / name).glob("*.jpg")
        )
    return written


def test_the_query_is_the_clearest_crop_not_the_tallest_part(tmp_path: Path):
    """Camera 2 has a tall crop of legs only (cut off by the frame): a clear, smaller crop of
    the whole person is the query instead; the partial crop stays in the gallery."""
    crops = [
        _crop(7, 1, 150, 0.95, frame=1),
        _crop(7, 1, 140, 0.90, frame=2),
        _crop(7, 2, 200, QUERY_VISIBILITY - 0.15, frame=3),
        _crop(7, 2, 90, QUERY_VISIBILITY + 0.05, frame=4),
    ]
    written = _write(tmp_path, crops)
    assert (2, 90) in written["query"]
    assert (2, 200) in written["bounding_box_test"]


def test_a_camera_that_never_sees_the_whole_person_gives_no_query(tmp_path: Path):
    crops = [
        _crop(7, 1, 150, 0.95, frame=1),
        _crop(7, 1, 140, 0.90, frame=2),
        _crop(7, 2, 200, 0.45, frame=3),
        _crop(7, 2, 180, 0.40, frame=4),
    ]
    written = _write(tmp_path, crops)
    assert [cam for cam, _ in written["query"]] == [1]  # camera 1 gives one, camera 2 none
    assert sorted(written["bounding_box_test"]) == [(1, 140), (2, 180), (2, 200)]


@pytest.mark.parametrize("lowest", [0.2, 0.5])
def test_every_query_is_clear_and_answerable(tmp_path: Path, lowest: float):
    """Random visibilities: every query shows its person clearly and has a match elsewhere."""
    rng = np.random.default_rng(int(lowest * 10))
    crops = [
        _crop(pid, cam, int(rng.integers(60, 220)), float(rng.uniform(lowest, 1.0)), frame)
        for frame, (pid, cam) in enumerate(
            (pid, cam) for pid in range(1, 9) for cam in range(1, 4) for _ in range(2)
        )
    ]
    _write(tmp_path, crops)
    gallery = {_pid_cam(f) for f in (tmp_path / "bounding_box_test").glob("*.jpg")}
    queries = list((tmp_path / "query").glob("*.jpg"))
    assert len(queries) >= 8
    for q in queries:
        pid, cam = _pid_cam(q)
        assert any(p == pid and c != cam for p, c in gallery)
        visibility = cv2.imread(str(q)).mean() / 200
        assert visibility >= QUERY_VISIBILITY - 0.01


def _pid_cam(path: Path) -> tuple[int, int]:
    pid, rest = path.name.split("_c", 1)
    return int(pid), int(rest[0])

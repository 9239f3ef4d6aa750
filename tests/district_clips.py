"""Rendered-district helpers shared by the API flow and console tests: who stays longest in
view, and a camera's footage cut into two clips (the second one "arrives later")."""

from __future__ import annotations

import shutil
from pathlib import Path

from reunite.evaluation.mot import read_mot_gt

MIN_HEIGHT = 48


def presence(district: Path) -> dict[tuple[str, int], list[int]]:
    """(camera, person) -> frames (1-based) where the person is at least MIN_HEIGHT tall."""
    seen: dict[tuple[str, int], list[int]] = {}
    for camera_dir in sorted((district / "cameras").iterdir()):
        for frame, boxes in read_mot_gt(camera_dir / "gt" / "gt.txt").items():
            for box in boxes:
                if box.h >= MIN_HEIGHT:
                    seen.setdefault((camera_dir.name, box.track_id), []).append(frame)
    return seen


def split_clip(district: Path, camera: str, split: int, out: Path) -> tuple[Path, Path]:
    """The camera's footage as two clips, frames 1..split and split+1..end (times in the names)."""
    frames = sorted((district / "cameras" / camera / "img1").glob("*.jpg"))
    clips = (out / f"{camera}_before", out / f"{camera}_after")
    for clip, part in zip(clips, (frames[:split], frames[split:]), strict=True):
        (clip / "img1").mkdir(parents=True)
        for frame in part:
            shutil.copy(frame, clip / "img1" / frame.name)
    return clips

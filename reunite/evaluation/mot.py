"""MOTChallenge ground truth: parse the folder layout, nothing else.

A sequence folder holds ``img1/000001.jpg ...`` and ``gt/gt.txt`` with one box per line:
``frame, id, x, y, w, h, consider flag, class, visibility`` (x, y: top-left corner in pixels).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from reunite.errors import DatasetLayoutError

PEDESTRIAN_CLASS = 1
"""MOT17 class of a walking or standing pedestrian; others (static person, car, ...) are not."""


@dataclass(frozen=True, slots=True)
class GtBox:
    """One ground-truth box as the gt file states it."""

    frame: int
    track_id: int
    x: float
    y: float
    w: float
    h: float
    consider: bool
    cls: int
    visibility: float

    def as_xyxy(self) -> tuple[float, float, float, float]:
        return self.x, self.y, self.x + self.w, self.y + self.h


@dataclass(frozen=True)
class MotSequence:
    """One camera's frames and their ground truth, keyed by 1-based frame number."""

    name: str
    frames: dict[int, Path]
    gt: dict[int, list[GtBox]]


def read_mot_gt(path: Path | str) -> dict[int, list[GtBox]]:
    """Read a MOTChallenge ``gt.txt`` into boxes grouped by frame number."""
    path = Path(path)
    if not path.is_file():
        raise DatasetLayoutError(f"MOTChallenge ground truth not found: {path}")
    by_frame: dict[int, list[GtBox]] = {}
    for line_no, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split(",")
        try:
            if len(fields) < 9:
                raise ValueError(f"{len(fields)} fields, need 9")
            box = GtBox(
                frame=int(fields[0]),
                track_id=int(fields[1]),
                x=float(fields[2]),
                y=float(fields[3]),
                w=float(fields[4]),
                h=float(fields[5]),
                consider=int(float(fields[6])) != 0,
                cls=int(float(fields[7])),
                visibility=float(fields[8]),
            )
        except ValueError as error:
            raise DatasetLayoutError(
                f"{path}:{line_no}: not a MOTChallenge gt line "
                f"(frame,id,x,y,w,h,flag,class,visibility): {error}"
            ) from error
        by_frame.setdefault(box.frame, []).append(box)
    return by_frame


def load_mot_sequence(folder: Path | str) -> MotSequence:
    """Load a sequence folder (``img1/*.jpg`` named by frame number, ``gt/gt.txt``).

    Frame names may carry a timestamp after the number (``000001_1795000000000.jpg``), as the
    synthetic district writes them.
    """
    folder = Path(folder)
    frames = {
        int(p.stem.split("_")[0]): p
        for p in sorted((folder / "img1").glob("*.jpg"))
        if p.stem.split("_")[0].isdigit()
    }
    if not frames:
        raise DatasetLayoutError(f"no frames in {folder / 'img1'}: not a MOTChallenge sequence")
    return MotSequence(name=folder.name, frames=frames, gt=read_mot_gt(folder / "gt" / "gt.txt"))


def find_mot_sequences(root: Path | str) -> list[MotSequence]:
    """Load every sequence folder (one holding ``gt/gt.txt``) below ``root``, by name."""
    root = Path(root)
    folders = sorted(p.parent.parent for p in root.glob("**/gt/gt.txt"))
    if not folders:
        raise DatasetLayoutError(f"no MOTChallenge sequences (*/gt/gt.txt) under {root}")
    return [load_mot_sequence(folder) for folder in folders]

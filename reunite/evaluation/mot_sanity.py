"""A sanity set of real people: same-camera re-ID on MOT17 frames (``../shared`` mot17_mini).

No real multi-camera re-ID set can be shipped here, so this is the one check that a model still
recognises *real* pedestrians: per sequence, each person clearly seen in the last frame is a query
and everyone clearly seen in the first frame is the gallery. "Clearly" means a pedestrian box
(class 1, flagged to consider) at least 60 px tall and at least 60 % visible. A query counts only
if its person is in that first-frame gallery. It is one camera by construction, so the Market-1501
same-camera rule is off, and each query is ranked only against its own sequence's gallery.
It is easy (a few frames apart, same pose and light): a model that fails it is broken, one that
passes it is not thereby good.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from reunite.errors import DatasetLayoutError
from reunite.evaluation.mot import PEDESTRIAN_CLASS, GtBox, MotSequence, find_mot_sequences
from reunite.evaluation.reid_eval import EvalSet

MIN_VISIBILITY = 0.6
MIN_HEIGHT = 60  # px
PROTOCOL = "mot17-same-camera"


@dataclass(frozen=True)
class _Person:
    track_id: int
    crop: np.ndarray
    label: str


def mot_sanity_set(
    root: Path | str, min_visibility: float = MIN_VISIBILITY, min_height: float = MIN_HEIGHT
) -> EvalSet:
    """Query = last-frame people, gallery = first-frame people, per sequence under ``root``.

    Sequences with no query left are dropped; per-sequence results are the ``sequence``
    subgroups. Raises DatasetLayoutError if no sequence has a query at all.
    """
    query: list[_Person] = []
    gallery: list[_Person] = []
    q_blocks: list[int] = []
    g_blocks: list[int] = []
    names: list[str] = []
    for sequence in find_mot_sequences(root):
        first = _people(sequence, min(sequence.frames), min_visibility, min_height)
        last = _people(sequence, max(sequence.frames), min_visibility, min_height)
        in_gallery = {person.track_id for person in first}
        queries = [person for person in last if person.track_id in in_gallery]
        if not queries or max(sequence.frames) == min(sequence.frames):
            continue
        block = len(names)
        names.append(sequence.name)
        query += queries
        gallery += first
        q_blocks += [block] * len(queries)
        g_blocks += [block] * len(first)
    if not query:
        raise DatasetLayoutError(
            f"no MOTChallenge sequence under {root} has a person seen clearly (>= {min_height} px, "
            f">= {min_visibility:.0%} visible) in both its first and its last frame"
        )
    q_blocks_array, g_blocks_array = np.array(q_blocks), np.array(g_blocks)
    return EvalSet(
        name=f"MOT17 sanity set ({root})",
        query=[person.crop for person in query],
        gallery=[person.crop for person in gallery],
        q_pids=np.array([person.track_id for person in query]),
        g_pids=np.array([person.track_id for person in gallery]),
        q_camids=np.ones(len(query), dtype=np.int64),
        g_camids=np.ones(len(gallery), dtype=np.int64),
        query_labels=[person.label for person in query],
        gallery_labels=[person.label for person in gallery],
        protocol=PROTOCOL,
        exclude_same_camera=False,
        q_blocks=q_blocks_array,
        g_blocks=g_blocks_array,
        subgroups={"sequence": {name: q_blocks_array == i for i, name in enumerate(names)}},
    )


def _people(
    sequence: MotSequence, frame: int, min_visibility: float, min_height: float
) -> list[_Person]:
    boxes = [box for box in sequence.gt.get(frame, []) if _clear(box, min_visibility, min_height)]
    if not boxes:
        return []
    image = cv2.imread(str(sequence.frames[frame]), cv2.IMREAD_COLOR)
    if image is None:
        raise DatasetLayoutError(f"cannot read frame {sequence.frames[frame]}: corrupt?")
    height, width = image.shape[:2]
    people = []
    for box in sorted(boxes, key=lambda b: b.track_id):
        x0, y0, x1, y1 = (round(v) for v in box.as_xyxy())
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
        if y1 - y0 < min_height or x1 <= x0:  # mostly outside the frame
            continue
        label = f"{sequence.name} f{frame} id{box.track_id}"
        people.append(_Person(box.track_id, image[y0:y1, x0:x1].copy(), label))
    return people


def _clear(box: GtBox, min_visibility: float, min_height: float) -> bool:
    return (
        box.consider
        and box.cls == PEDESTRIAN_CLASS
        and box.visibility >= min_visibility
        and box.h >= min_height
    )

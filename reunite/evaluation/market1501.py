"""The Market-1501 folder layout, the de facto exchange format for person re-ID data sets.

``root/bounding_box_train``, ``root/bounding_box_test`` (the gallery) and ``root/query`` hold crops
named ``PPPP_cCsS_FFFFFF_NN.jpg``: person id (4 digits; ``-1`` marks junk, ``0000`` distractors),
camera 1..9, sequence (one digit in Market-1501, more in larger synthetic sets), frame and box
index. Files that are not ``.jpg`` (the ``Thumbs.db`` shipped
with Market-1501) are ignored; a ``.jpg`` with any other name is an error, because silently dropping
crops would change the metrics.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from reunite.errors import DatasetLayoutError

_NAME = re.compile(r"^(-1|\d{4})_c([1-9])s(\d+)_(\d{6})_(\d{2})\.jpg$")


@dataclass(frozen=True, slots=True)
class ReidImage:
    """One crop: where it is, who it shows (pid) and which camera saw it (camid, as named)."""

    path: Path
    pid: int
    camid: int
    seq: int
    frame: int


class Market1501Layout:
    """Parses a Market-1501-style folder into train, gallery and query image lists."""

    TRAIN_DIR = "bounding_box_train"
    GALLERY_DIR = "bounding_box_test"
    QUERY_DIR = "query"

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetLayoutError(f"data set folder not found: {self.root}")
        self.train = _parse_folder(self.root / self.TRAIN_DIR)
        self.gallery = _parse_folder(self.root / self.GALLERY_DIR)
        self.query = _parse_folder(self.root / self.QUERY_DIR)
        for name, images in ((self.GALLERY_DIR, self.gallery), (self.QUERY_DIR, self.query)):
            if not images:
                raise DatasetLayoutError(
                    f"no .jpg images in {name}/ of {self.root}: there is nothing to evaluate"
                )

    def relabel_train(self) -> list[ReidImage]:
        """Training images with pids mapped to 0..N-1 (ascending original pid), for a classifier.

        Junk (-1) and distractor (0) crops are left out: neither is one identity to learn.
        """
        kept = [image for image in self.train if image.pid > 0]
        label = {pid: i for i, pid in enumerate(sorted({image.pid for image in kept}))}
        return [
            ReidImage(image.path, label[image.pid], image.camid, image.seq, image.frame)
            for image in kept
        ]


def _parse_folder(folder: Path) -> list[ReidImage]:
    if not folder.is_dir():
        raise DatasetLayoutError(
            f"missing folder {folder.name}/ in {folder.parent}: a Market-1501 layout needs "
            f"{Market1501Layout.TRAIN_DIR}/, {Market1501Layout.GALLERY_DIR}/ and "
            f"{Market1501Layout.QUERY_DIR}/"
        )
    images = []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() != ".jpg":
            continue
        match = _NAME.match(path.name)
        if match is None:
            raise DatasetLayoutError(
                f"{folder.name}/{path.name}: name does not match PPPP_cCsS_FFFFFF_NN.jpg "
                f"(person, camera 1-9, sequence, frame, box: e.g. 0001_c1s1_000151_01.jpg, or "
                f"-1_c1s1_000151_01.jpg for junk) in {folder.parent}; rename or remove it"
            )
        pid, camid, seq, frame, _box = (int(group) for group in match.groups())
        images.append(ReidImage(path, pid, camid, seq, frame))
    return images

"""Case recall on an ingested synthetic district: the main job's figure.

For every child and elderly identity the district renders a *last-seen still* — a CCTV crop from a
camera the person passed before the clip starts. Used as the query, it should bring up the
person's sightings on the district's other cameras. Ground truth for a sighting comes from the
renderer: each stored crop's box is matched (IoU >= 0.5) to the camera's ground-truth boxes in its
frame, and the sighting takes its crops' majority identity. A case whose person has no sighting on
another camera than the last-seen one cannot be answered and is reported, not counted.

The same queries also measure what tracklet aggregation buys: the index's quality-weighted mean
vector per sighting against one crop per sighting (its best crop, and its first crop).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from reunite.evaluation.detection import iou_matrix
from reunite.evaluation.mot import read_mot_gt
from reunite.pipeline.cameras import district_camera_id
from reunite.pipeline.embedding_model import EmbeddingModel
from reunite.pipeline.schema import Embedding, Sighting
from reunite.pipeline.workspace import Workspace

MATCH_IOU = 0.3
MATCH_COVER = 0.6
"""A crop shows a ground-truth person when it covers >= 60 % of their box with IoU >= 0.3: the
detector's box may hold an umbrella or a shadow that the visible-body box leaves out, which makes
the IoU alone too strict for telling *who* a sighting is (detection accuracy is measured
separately, at the usual IoU 0.5)."""
RECALL_AT = (1, 5, 10, 20, 50)


@dataclass
class StoredSighting:
    id: int
    camera_id: str
    start_time: object
    person_id: int | None
    vector: np.ndarray
    crop_shas: list[str]
    crop_qualities: list[float]


@dataclass
class CaseResult:
    person_id: int
    age_group: str
    last_seen_camera: str
    answerable: bool
    rank: int | None  # 1-based rank of the first correct sighting on another camera
    ranked: list[int] = field(default_factory=list)  # top sighting ids
    correct: set[int] = field(default_factory=set)
    average_precision: float = 0.0


@dataclass
class CaseReport:
    cases: list[CaseResult]
    variant: str

    @property
    def answerable(self) -> list[CaseResult]:
        return [c for c in self.cases if c.answerable]

    def recall_at(self, k: int) -> float:
        rows = self.answerable
        return (
            sum(1 for c in rows if c.rank is not None and c.rank <= k) / len(rows)
            if rows
            else float("nan")
        )

    @property
    def mean_ap(self) -> float:
        rows = self.answerable
        return float(np.mean([c.average_precision for c in rows])) if rows else float("nan")


def load_sightings(ws: Workspace, district: Path, model: str) -> list[StoredSighting]:
    """Every stored sighting with its vector and its ground-truth identity (None: no match)."""
    gts: dict[str, dict] = {}
    rows = []
    with ws.db.session() as session:
        query = (
            select(Sighting, Embedding)
            .join(Embedding, Embedding.sighting_id == Sighting.id)
            .where(Embedding.model == model)
            .options(selectinload(Sighting.crops))
            .order_by(Sighting.id)
        )
        for sighting, embedding in session.execute(query):
            camera = sighting.camera_id
            if camera not in gts:
                gt_file = district / "cameras" / camera / "gt" / "gt.txt"
                gts[camera] = read_mot_gt(gt_file) if gt_file.is_file() else {}
            votes: Counter[int] = Counter()
            for crop in sighting.crops:
                boxes = gts[camera].get(crop.frame_index + 1, [])
                if not boxes:
                    continue
                person = _person_in(crop, boxes)
                if person is not None:
                    votes[person] += 1
            person = votes.most_common(1)[0][0] if votes else None
            crops = sorted(sighting.crops, key=lambda c: -c.quality)
            rows.append(
                StoredSighting(
                    sighting.id,
                    camera,
                    sighting.start_time,
                    person,
                    embedding.array(),
                    [c.sha256 for c in crops],
                    [c.quality for c in crops],
                )
            )
    return rows


def _person_in(crop, boxes: list) -> int | None:
    """The ground-truth person a crop shows (see MATCH_COVER), or None."""
    gt = np.array([b.as_xyxy() for b in boxes], dtype=np.float64)
    box = np.array([[crop.x1, crop.y1, crop.x2, crop.y2]], dtype=np.float64)
    ious = iou_matrix(box, gt)[0]
    inter_w = np.clip(np.minimum(box[0, 2], gt[:, 2]) - np.maximum(box[0, 0], gt[:, 0]), 0, None)
    inter_h = np.clip(np.minimum(box[0, 3], gt[:, 3]) - np.maximum(box[0, 1], gt[:, 1]), 0, None)
    area = np.maximum((gt[:, 2] - gt[:, 0]) * (gt[:, 3] - gt[:, 1]), 1e-9)
    cover = inter_w * inter_h / area
    ok = (ious >= MATCH_IOU) & (cover >= MATCH_COVER)
    if not ok.any():
        return None
    return int(boxes[int(np.argmax(np.where(ok, ious, -1.0)))].track_id)


def read_cases(district: Path) -> list[dict]:
    return json.loads((district / "cases.json").read_text())


def rank_cases(
    cases: list[dict],
    queries: np.ndarray,
    sightings: list[StoredSighting],
    gallery: np.ndarray,
    variant: str,
    keep: int = 10,
) -> CaseReport:
    """Rank every sighting for every case query (cosine on L2-normalised vectors)."""
    results = []
    ids = np.array([s.id for s in sightings])
    scores = queries @ gallery.T if len(sightings) else np.zeros((len(cases), 0))
    for case, row in zip(cases, scores, strict=True):
        person = int(case["person_id"])
        last_cam = district_camera_id(int(case["last_seen_info"]["camera_id"]))
        correct = {s.id for s in sightings if s.person_id == person and s.camera_id != last_cam}
        order = np.lexsort((ids, -row))
        hits = np.array([ids[i] in correct for i in order])
        rank = int(np.argmax(hits)) + 1 if hits.any() else None
        ap = 0.0
        if hits.any():
            positions = np.flatnonzero(hits) + 1
            ap = float(np.mean(np.arange(1, len(positions) + 1) / positions))
        results.append(
            CaseResult(
                person_id=person,
                age_group=case["age_group"],
                last_seen_camera=last_cam,
                answerable=bool(correct),
                rank=rank,
                ranked=[int(ids[i]) for i in order[:keep]],
                correct=correct,
                average_precision=ap,
            )
        )
    return CaseReport(results, variant)


def evaluate_cases(
    ws: Workspace, district: Path, model: EmbeddingModel, single_crop_variants: bool = True
) -> tuple[list[dict], list[StoredSighting], list[CaseReport]]:
    """Case reports for the index's aggregated vectors and, optionally, single-crop baselines."""
    cases = read_cases(district)
    stills = []
    for case in cases:
        image = cv2.imread(str(district / case["last_seen"]), cv2.IMREAD_COLOR)
        if image is None:
            raise FileNotFoundError(f"{district / case['last_seen']} is missing or unreadable")
        stills.append(image)
    queries = model.embedder.embed(stills)
    sightings = load_sightings(ws, district, model.version)
    gallery = np.stack([s.vector for s in sightings]) if sightings else np.zeros((0, model.dim))
    reports = [rank_cases(cases, queries, sightings, gallery, "tracklet (quality-weighted mean)")]
    if single_crop_variants and sightings:
        best = [_decode(ws, s.crop_shas[0]) for s in sightings]
        reports.append(
            rank_cases(
                cases, queries, sightings, model.embedder.embed(best), "single crop (best quality)"
            )
        )
        first = [_decode(ws, _first_crop(ws, s)) for s in sightings]
        reports.append(
            rank_cases(
                cases, queries, sightings, model.embedder.embed(first), "single crop (arbitrary)"
            )
        )
    return cases, sightings, reports


def _first_crop(ws: Workspace, sighting: StoredSighting) -> str:
    return min(sighting.crop_shas)


def _decode(ws: Workspace, sha: str) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(ws.crops.get(sha), np.uint8), cv2.IMREAD_COLOR)

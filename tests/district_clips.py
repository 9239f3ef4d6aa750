"""Rendered-district helpers shared by the API flow and console tests: who stays longest in
view, and a camera's footage cut into two clips (the second one "arrives later")."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from reunite.config import Settings
from reunite.evaluation.district_cases import StoredSighting, load_sightings
from reunite.evaluation.mot import read_mot_gt
from reunite.pipeline.cameras import add_camera, read_district_cameras
from reunite.pipeline.detectors import detector_factory
from reunite.pipeline.embedding_model import load_embedding_model
from reunite.pipeline.ingest import IngestOptions, ingest_source
from reunite.pipeline.jobs import run_job
from reunite.pipeline.workspace import Workspace

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


@dataclass(frozen=True)
class IngestedDistrict:
    """A district ingested into ``data`` except the later clip of ``camera``."""

    camera: str
    person: int
    """Who stays longest in view on ``camera``: the missing person of the flow tests."""
    split: int
    later_clip: Path
    people: dict[int, StoredSighting]
    """Stored sighting id -> the sighting with its ground-truth person."""


def ingest_but_later_clip(district: Path, data: Path) -> IngestedDistrict:
    """Register the cameras and ingest every camera's footage into ``data``, except the second
    half of the clip of the camera where one person stays longest: tests ingest that clip later,
    while the server runs, and expect an alert for that person."""
    (camera, person), frames = max(presence(district).items(), key=lambda kv: len(kv[1]))
    split = (min(frames) + max(frames)) // 2
    before, after = split_clip(district, camera, split, data / "clips")
    ws = Workspace.open(Settings(data_dir=data, database_url=""))
    try:
        model = load_embedding_model("default")
        with ws.db.session() as session:
            for spec in read_district_cameras(district):
                add_camera(session, spec, replace=True)
        version = ws.index_for(model.version, model.dim)
        for camera_id in sorted(c.name for c in (district / "cameras").iterdir()):
            source = before if camera_id == camera else district / "cameras" / camera_id
            with run_job(ws.db, "ingest", f"camera:{camera_id}", {"camera": camera_id}) as job:
                ingest_source(
                    ws, model, version, camera_id, source, detector_factory(), IngestOptions(), job
                )
        # The first clip starts at frame 1, so ground truth lines up with every stored sighting.
        people = {s.id: s for s in load_sightings(ws, district, model.version)}
    finally:
        ws.close()
    return IngestedDistrict(camera, person, split, after, people)

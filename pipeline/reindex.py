"""Re-embed every stored sighting with another model into a new index version, then switch.

The new version is built beside the active one (status ``building``); queries keep using the
active one until the end, when one transaction retires the old version and activates the new.
Progress lives in the database itself — a sighting is done when it has an embedding of the new
model — so a reindex killed at any point and started again continues where it stopped, and
sightings ingested meanwhile (embedded with the old model) are caught up before the switch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from reunite.errors import InvalidOptionError, ReuniteError
from reunite.pipeline.embedding_model import EmbeddingModel
from reunite.pipeline.jobs import JobHandle, now
from reunite.pipeline.schema import Embedding, IndexVersion, Sighting
from reunite.pipeline.sightings import aggregate
from reunite.pipeline.vector_store import KIND_DEFAULTS
from reunite.pipeline.workspace import ACTIVE, BUILDING, RETIRED, Workspace

log = logging.getLogger(__name__)


@dataclass
class ReindexReport:
    version_id: int
    model: str
    embedded: int = 0
    total: int = 0
    skipped: list[str] = field(default_factory=list)
    switched: bool = False


def _building_version(ws: Workspace, model: EmbeddingModel, kind: str) -> IndexVersion:
    with ws.db.session() as session:
        version = session.scalars(
            select(IndexVersion).where(
                IndexVersion.status == BUILDING,
                IndexVersion.model == model.version,
                IndexVersion.kind == kind,
            )
        ).first()
        if version is not None:
            session.expunge(version)
            return version
    return ws.new_version(model.version, model.dim, kind, status=BUILDING)


def reindex(
    ws: Workspace,
    model: EmbeddingModel,
    job: JobHandle | None = None,
    batch_size: int = 128,
    on_progress: Callable[[int, int], None] | None = None,
    kind: str = "flat",
) -> ReindexReport:
    """Build a new index version of ``kind`` with ``model`` (a new kind with the same model
    re-uses the stored embeddings: nothing is re-embedded) and make it the active one."""
    if kind not in KIND_DEFAULTS:
        raise InvalidOptionError(f"unknown index kind {kind!r}: use {', '.join(KIND_DEFAULTS)}")
    active = ws.active_version()
    if active is not None and active.model == model.version and active.kind == kind:
        raise InvalidOptionError(
            f"the active index already holds {model.version} embeddings in a {kind} index: "
            "nothing to reindex"
        )
    version = _building_version(ws, model, kind)
    ws.open_store(version)  # resumes: the sync loads what earlier runs embedded
    report = ReindexReport(version.id, model.version)
    unusable: set[int] = set()
    while True:
        with ws.db.session() as session:
            done = select(Embedding.sighting_id).where(Embedding.model == model.version)
            pending = select(Sighting.id).where(Sighting.id.not_in(done))
            report.total = session.scalar(select(func.count(Sighting.id)))
            query = (
                select(Sighting)
                .where(Sighting.id.in_(pending), Sighting.id.not_in(unusable or {-1}))
                .order_by(Sighting.id)
                .limit(batch_size)
                .options(selectinload(Sighting.crops))
            )
            sightings = list(session.scalars(query))
            crops = [
                (s.id, s.camera_id, s.start_time, [(c.sha256, c.quality) for c in s.crops])
                for s in sightings
            ]
            done_count = session.scalar(select(func.count()).select_from(done.subquery()))
        if not crops:
            break
        images, owners, weights, keep = [], [], [], []
        for sighting_id, camera_id, start, items in crops:
            try:
                decoded = [_decode(ws, sha) for sha, _ in items]
            except ReuniteError as error:
                unusable.add(sighting_id)
                report.skipped.append(f"sighting {sighting_id}: {error}")
                continue
            if not decoded:
                unusable.add(sighting_id)
                report.skipped.append(f"sighting {sighting_id}: no crops stored")
                continue
            keep.append((sighting_id, camera_id, start))
            for image, (_, quality) in zip(decoded, items, strict=True):
                images.append(image)
                owners.append(len(keep) - 1)
                weights.append(quality)
        if not keep:
            continue
        vectors = model.embedder.embed(images)
        owners_arr, weights_arr = np.array(owners), np.array(weights, dtype=np.float32)
        aggregated = np.stack(
            [
                aggregate(vectors[owners_arr == i], weights_arr[owners_arr == i])
                for i in range(len(keep))
            ]
        )
        with ws.db.session() as session:
            session.add_all(
                Embedding.from_array(model.version, vector, sighting_id=sighting_id)
                for (sighting_id, _, _), vector in zip(keep, aggregated, strict=True)
            )
            if job is not None:
                job.checkpoint(
                    session,
                    {"version_id": version.id, "last_sighting": keep[-1][0]},
                    done_count + len(keep),
                    report.total,
                )
                job.add_errors(session, report.skipped[-len(crops) :] if report.skipped else [])
        with ws.writing(version) as store:
            store.add(
                np.array([s for s, _, _ in keep], dtype=np.int64),
                aggregated,
                [c for _, c, _ in keep],
                [t for _, _, t in keep],
            )
        report.embedded += len(keep)
        if on_progress is not None:
            on_progress(done_count + len(keep), report.total)
    with ws.db.session() as session:
        for old in session.scalars(select(IndexVersion).where(IndexVersion.status == ACTIVE)):
            old.status = RETIRED
        session.flush()
        new = session.get(IndexVersion, version.id)
        new.status, new.activated_at = ACTIVE, now()
    report.switched = True
    log.info("index version %s (%s) is now active", version.id, model.version)
    return report


def _decode(ws: Workspace, sha: str) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(ws.crops.get(sha), np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ReuniteError(f"crop {sha} is not a readable image")
    return image

"""Attributes per sighting: predicted from its crops during ingest, stored, backfilled for old ones.

A sighting's attributes are the quality-weighted mean of its crops' calibrated probabilities (the
same weights as its re-ID vector): a mixture, so one blurred crop widens the distribution rather
than overruling the sharp ones. During ingest the head reads the per-crop embeddings the ingest
has just computed when its re-ID model is the attribute model's backbone (no extra network run);
with another re-ID model it embeds the crops with the backbone itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from reunite.errors import NotFoundError, StoreError
from reunite.models.attribute_model import DEFAULT_ATTRIBUTE_MODEL, AttributeModel
from reunite.pipeline.schema import Sighting, SightingAttributes
from reunite.pipeline.sightings import SightingDraft
from reunite.pipeline.workspace import Workspace

log = logging.getLogger(__name__)
Probabilities = dict[str, dict[str, float]]


@lru_cache(maxsize=4)
def load_attribute_model(spec: str = DEFAULT_ATTRIBUTE_MODEL) -> AttributeModel:
    """The attribute model, loaded once per process (ingest calls this for every source)."""
    return AttributeModel.load(spec)


def predict_drafts(
    drafts: Sequence[SightingDraft], model: AttributeModel, embedding_version: str | None = None
) -> list[Probabilities]:
    """Each draft's aggregated probabilities, in order. ``embedding_version`` is the version of
    the vectors in ``draft.embeddings``: when it is the head's backbone, they are reused."""
    counts = [len(d.crops) for d in drafts]
    if not drafts or sum(counts) == 0:
        return [{} for _ in drafts]
    reuse = embedding_version == model.backbone_version and all(
        d.embeddings is not None and len(d.embeddings) == len(d.crops) for d in drafts
    )
    if reuse:
        probs = model.predict_embeddings(np.concatenate([d.embeddings for d in drafts]))
    else:
        probs = model.predict([c.image for d in drafts for c in d.crops])
    out, start = [], 0
    for draft, n in zip(drafts, counts, strict=True):
        if n == 0:
            out.append({})
            continue
        rows = _slice(probs, start, start + n)
        out.append(rows.aggregate([c.quality.score for c in draft.crops]).row(0))
        start += n
    return out


def _slice(probs, start: int, end: int):
    from reunite.models.attribute_model import AttributeProbabilities

    return AttributeProbabilities(
        {f: p[start:end] for f, p in probs.fields.items()}, probs.accessories[start:end]
    )


def attribute_row(model: AttributeModel, probabilities: Probabilities) -> SightingAttributes:
    """A row to attach to a new sighting (``sighting.id`` is set on flush)."""
    return SightingAttributes(model=model.version, probabilities=probabilities)


@dataclass
class BackfillReport:
    model: str
    sightings: int = 0
    skipped_without_crops: int = 0
    missing_crop_files: int = 0


def backfill(
    ws: Workspace,
    model: AttributeModel,
    *,
    batch_size: int = 64,
    progress: Callable[[int, int], None] | None = None,
) -> BackfillReport:
    """Predict and store attributes for every sighting that has none under ``model``, reading its
    stored crops; committed per batch, so an interrupted backfill continues where it stopped."""
    report = BackfillReport(model.version)
    with ws.db.session() as session:
        done = select(SightingAttributes.sighting_id).where(
            SightingAttributes.model == model.version
        )
        todo = list(
            session.scalars(
                select(Sighting.id).where(Sighting.id.not_in(done)).order_by(Sighting.id)
            )
        )
    for start in range(0, len(todo), batch_size):
        ids = todo[start : start + batch_size]
        with ws.db.session() as session:
            sightings = session.scalars(
                select(Sighting).where(Sighting.id.in_(ids)).options(selectinload(Sighting.crops))
            ).all()
            crops, weights, owners = [], [], []
            for s in sightings:
                images = []
                for crop in s.crops:
                    try:
                        data = ws.crops.get(crop.sha256)
                    except (NotFoundError, StoreError):
                        report.missing_crop_files += 1
                        continue
                    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
                    if image is None:
                        report.missing_crop_files += 1
                        continue
                    images.append(image)
                    weights.append(crop.quality)
                if not images:
                    report.skipped_without_crops += 1
                    continue
                crops.extend(images)
                owners.append((s.id, len(images)))
            probs = model.predict(crops) if crops else None
            at = 0
            for sighting_id, n in owners:
                row = _slice(probs, at, at + n).aggregate(weights[at : at + n]).row(0)
                session.add(
                    SightingAttributes(
                        sighting_id=sighting_id, model=model.version, probabilities=row
                    )
                )
                at += n
                report.sightings += 1
        if progress is not None:
            progress(min(start + batch_size, len(todo)), len(todo))
    return report


def load_attributes(
    ws: Workspace, sighting_ids: Sequence[int], model_version: str
) -> dict[int, Probabilities]:
    """Stored probabilities of these sightings under one model (absent ids have none)."""
    out: dict[int, Probabilities] = {}
    ids = list(sighting_ids)
    with ws.db.session() as session:
        for start in range(0, len(ids), 900):  # SQLite's bound-parameter limit
            chunk = ids[start : start + 900]
            rows = session.execute(
                select(SightingAttributes.sighting_id, SightingAttributes.probabilities).where(
                    SightingAttributes.model == model_version,
                    SightingAttributes.sighting_id.in_(chunk),
                )
            )
            out.update({sid: probs for sid, probs in rows})
    return out


def describe_drafts(
    drafts: Sequence[SightingDraft], embedding_version: str
) -> tuple[str, list[Probabilities]]:
    """The ingest hook: the shipped attribute model's version and each draft's attributes."""
    model = load_attribute_model()
    return model.version, predict_drafts(drafts, model, embedding_version)

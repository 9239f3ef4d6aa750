"""Retention: sightings older than the limit are deleted with their crops and index entries.

Order matters for crash safety: the database rows go first (the source of truth), then the index
entries (a crash here leaves shards the start-up sync repairs from the database), then the crop
files that no remaining row references (a crash here leaves orphan files, which the next purge
sweeps). Searches never return sightings past the limit even before a purge runs: the matcher
clamps every time window to the retention period.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import delete, func, select

from reunite.errors import InvalidOptionError
from reunite.pipeline.jobs import JobHandle, now
from reunite.pipeline.schema import Crop, IndexVersion, Sighting
from reunite.pipeline.workspace import ACTIVE, BUILDING, Workspace

ORPHAN_MIN_AGE_S = 3600.0


@dataclass
class PurgeReport:
    cutoff: datetime
    sightings: int = 0
    crop_files: int = 0
    orphan_files: int = 0


def parse_age(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m`` or ``2w`` as a timedelta."""
    units = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
    text = text.strip().lower()
    if len(text) < 2 or text[-1] not in units or not text[:-1].isdigit():
        raise InvalidOptionError(
            f"age {text!r} not understood: write a whole number and a unit, e.g. 30d, 12h, 2w"
        )
    return timedelta(**{units[text[-1]]: int(text[:-1])})


def purge(
    ws: Workspace,
    older_than: timedelta,
    job: JobHandle | None = None,
    batch_size: int = 500,
    sweep_orphans: bool = True,
    on_progress: Callable[[int], None] | None = None,
    reference: datetime | None = None,
) -> PurgeReport:
    """Delete every sighting that started before ``reference - older_than`` (reference: now;
    footage replayed from another time, as in tests, passes its own)."""
    if older_than <= timedelta(0):
        raise InvalidOptionError("the retention age must be positive")
    report = PurgeReport(cutoff=(reference or now()) - older_than)
    with ws.db.session() as session:
        versions = list(
            session.scalars(select(IndexVersion).where(IndexVersion.status.in_([ACTIVE, BUILDING])))
        )
        for version in versions:
            session.expunge(version)
    while True:
        with ws.db.session() as session:
            ids = list(
                session.scalars(
                    select(Sighting.id)
                    .where(Sighting.start_time < report.cutoff)
                    .order_by(Sighting.id)
                    .limit(batch_size)
                )
            )
            if not ids:
                break
            shas = set(session.scalars(select(Crop.sha256).where(Crop.sighting_id.in_(ids))))
            shas |= set(
                session.scalars(
                    select(Sighting.frame_sha256).where(
                        Sighting.id.in_(ids), Sighting.frame_sha256.is_not(None)
                    )
                )
            )
            session.execute(delete(Crop).where(Crop.sighting_id.in_(ids)))
            session.execute(delete(Sighting).where(Sighting.id.in_(ids)))
            report.sightings += len(ids)
            if job is not None:
                job.checkpoint(session, {"cutoff": report.cutoff.isoformat()}, report.sightings)
        for version in versions:
            with ws.writing(version) as store:
                store.remove(np.array(ids, dtype=np.int64))
        report.crop_files += _delete_unreferenced(ws, shas)
        if on_progress is not None:
            on_progress(report.sightings)
    for version in versions:
        with ws.writing(version) as store:
            store.remove_before(report.cutoff)
    if sweep_orphans:
        # Only files older than an hour: a running ingest writes crops just before committing
        # the rows that reference them.
        settled = time.time() - ORPHAN_MIN_AGE_S
        old = {sha for sha in ws.crops.iter_all() if _mtime(ws, sha) < settled}
        report.orphan_files = _delete_unreferenced(ws, old)
    return report


def _mtime(ws: Workspace, sha: str) -> float:
    try:
        return ws.crops.path(sha).stat().st_mtime
    except FileNotFoundError:
        return float("inf")


def _delete_unreferenced(ws: Workspace, shas: set[str]) -> int:
    deleted = 0
    candidates = sorted(shas)
    with ws.db.session() as session:
        for start in range(0, len(candidates), 900):
            batch = candidates[start : start + 900]
            used = set(session.scalars(select(Crop.sha256).where(Crop.sha256.in_(batch))))
            # A frame is shared by every sighting cut from it: kept while any of them is.
            used |= set(
                session.scalars(
                    select(Sighting.frame_sha256).where(Sighting.frame_sha256.in_(batch))
                )
            )
            for sha in batch:
                if sha not in used and ws.crops.delete(sha):
                    deleted += 1
    return deleted


def count_sightings(ws: Workspace) -> int:
    with ws.db.session() as session:
        return session.scalar(select(func.count(Sighting.id))) or 0

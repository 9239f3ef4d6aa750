"""Database rows and pipeline results to API bodies (one place for URLs)."""

from __future__ import annotations

from reunite.api import schemas
from reunite.pipeline.case_schema import Case, CasePhoto
from reunite.pipeline.schema import Camera, Sighting
from reunite.pipeline.search import SightingResult


def thumbnail_url(sighting_id: int) -> str:
    return f"/sightings/{sighting_id}/thumbnail"


def result_out(result: SightingResult, decision: str | None = None) -> schemas.Sighting:
    return schemas.Sighting(
        sighting_id=result.sighting_id,
        score=round(result.score, 6),
        camera_id=result.camera_id,
        camera_name=result.camera_name,
        start_time=result.start_time,
        end_time=result.end_time,
        box=result.box,
        thumbnail_url=thumbnail_url(result.sighting_id) if result.thumbnail_sha256 else None,
        decision=decision,
    )


def sighting_out(
    sighting: Sighting, camera: Camera, score: float | None = None, decision: str | None = None
) -> schemas.Sighting:
    return schemas.Sighting(
        sighting_id=sighting.id,
        score=score,
        camera_id=sighting.camera_id,
        camera_name=camera.name,
        start_time=sighting.start_time,
        end_time=sighting.end_time,
        box=(sighting.x1, sighting.y1, sighting.x2, sighting.y2),
        thumbnail_url=thumbnail_url(sighting.id) if sighting.thumbnail_sha256 else None,
        decision=decision,
    )


def photo_out(photo: CasePhoto) -> schemas.Photo:
    base = f"/cases/{photo.case_id}/photos/{photo.id}"
    return schemas.Photo(
        id=photo.id,
        kind=photo.kind,
        box=(photo.x1, photo.y1, photo.x2, photo.y2),
        found_by=photo.found_by,
        crop_url=f"{base}/crop",
        image_url=f"{base}/image",
    )


def case_out(case: Case, alerts: tuple[object, int] | None = None) -> schemas.Case:
    """``alerts``: (newest alert time, unacknowledged count), when the caller counted them."""
    latest, unacknowledged = alerts or (None, 0)
    return schemas.Case(
        latest_alert_at=latest,
        unacknowledged_alerts=unacknowledged,
        id=case.id,
        alias=case.alias,
        age_group=case.age_group,
        description=case.description,
        clothing_notes=case.clothing_notes,
        last_seen_time=case.last_seen_time,
        last_seen_place=case.last_seen_place,
        last_seen_camera_id=case.last_seen_camera_id,
        last_seen_x=case.last_seen_x,
        last_seen_y=case.last_seen_y,
        status=case.status,
        alert_threshold=case.alert_threshold,
        created_at=case.created_at,
        updated_at=case.updated_at,
        closed_at=case.closed_at,
        photos=[photo_out(p) for p in case.photos],
    )

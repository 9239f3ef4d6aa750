"""Sightings, their crops, and cameras: read-only, audited, and never past retention."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from reunite.api import schemas
from reunite.api.convert import sighting_out
from reunite.api.security import Staff, Svc, record
from reunite.api.service import Service
from reunite.errors import NotFoundError
from reunite.pipeline.schema import Camera, Crop, Sighting, utcnow

router = APIRouter(tags=["sightings"])

JPEG = {200: {"content": {"image/jpeg": {}}}}


def _sighting(svc: Service, session: Session, sighting_id: schemas.Id) -> tuple[Sighting, Camera]:
    """A sighting within the retention period (an older one is gone for the API even before a
    purge deletes it)."""
    row = session.execute(
        select(Sighting, Camera).join(Camera).where(Sighting.id == sighting_id)
    ).first()
    oldest = utcnow() - timedelta(days=svc.settings.retention_days)
    if row is None or row[0].end_time < oldest:
        raise NotFoundError(f"there is no sighting {sighting_id} (or it is past retention)")
    return row[0], row[1]


@router.get("/sightings/{sighting_id}", response_model=schemas.SightingDetail)
def sighting_detail(
    svc: Svc, user: Staff, request: Request, sighting_id: schemas.Id
) -> schemas.SightingDetail:
    with svc.ws.db.session() as session:
        sighting, camera = _sighting(svc, session, sighting_id)
        base = sighting_out(sighting, camera)
        crops = [
            schemas.CropInfo(
                id=c.id,
                time=c.time,
                box=(c.x1, c.y1, c.x2, c.y2),
                quality=c.quality,
                url=f"/sightings/{sighting_id}/crops/{c.id}",
            )
            for c in sighting.crops
        ]
        frame_url = f"/sightings/{sighting_id}/frame" if sighting.frame_sha256 else None
        out = schemas.SightingDetail(
            **base.model_dump(), frames=sighting.frames, crops=crops, frame_url=frame_url
        )
    record(svc, user, "sighting_view", request=request, result_ids=[sighting_id])
    return out


@router.get("/sightings/{sighting_id}/thumbnail", responses=JPEG, response_class=Response)
def thumbnail(svc: Svc, user: Staff, request: Request, sighting_id: schemas.Id) -> Response:
    with svc.ws.db.session() as session:
        sighting, _ = _sighting(svc, session, sighting_id)
        sha = sighting.thumbnail_sha256
    if sha is None:
        raise NotFoundError(f"sighting {sighting_id} has no thumbnail")
    record(svc, user, "crop_view", request=request, result_ids=[sighting_id])
    return Response(svc.ws.crops.get(sha), media_type="image/jpeg")


@router.get("/sightings/{sighting_id}/crops/{crop_id}", responses=JPEG, response_class=Response)
def crop_image(
    svc: Svc, user: Staff, request: Request, sighting_id: schemas.Id, crop_id: schemas.Id
) -> Response:
    with svc.ws.db.session() as session:
        _sighting(svc, session, sighting_id)
        crop = session.get(Crop, crop_id)
        if crop is None or crop.sighting_id != sighting_id:
            raise NotFoundError(f"sighting {sighting_id} has no crop {crop_id}")
        sha = crop.sha256
    record(
        svc, user, "crop_view", request=request, result_ids=[sighting_id], params={"crop": crop_id}
    )
    return Response(svc.ws.crops.get(sha), media_type="image/jpeg")


@router.get("/sightings/{sighting_id}/frame", responses=JPEG, response_class=Response)
def frame_image(svc: Svc, user: Staff, request: Request, sighting_id: schemas.Id) -> Response:
    """The whole frame the sighting's best crop came from (its ``box`` is in this frame's
    pixels); 404 for sightings ingested before frames were kept."""
    with svc.ws.db.session() as session:
        sighting, _ = _sighting(svc, session, sighting_id)
        sha = sighting.frame_sha256
    if sha is None:
        raise NotFoundError(f"sighting {sighting_id} was stored without its frame")
    record(svc, user, "frame_view", request=request, result_ids=[sighting_id])
    return Response(svc.ws.crops.get(sha), media_type="image/jpeg")


@router.get("/cameras", response_model=list[schemas.Camera], tags=["cameras"])
def cameras(svc: Svc, user: Staff) -> list[schemas.Camera]:
    with svc.ws.db.session() as session:
        return [
            schemas.Camera(id=c.id, name=c.name, x=c.x, y=c.y, area=c.area)
            for c in session.scalars(select(Camera).order_by(Camera.id))
        ]

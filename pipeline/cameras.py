"""Registered cameras: every source of footage belongs to one, and every sighting names one."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from reunite.errors import DatasetLayoutError, InvalidOptionError, UnknownCameraError
from reunite.pipeline.schema import Camera

CAMERA_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
"""Camera ids appear in file names, URLs and log lines: letters, digits, ``_ . -``, 64 at most."""


@dataclass(frozen=True, slots=True)
class CameraSpec:
    id: str
    name: str
    x: float = 0.0
    y: float = 0.0
    area: str | None = None


def check_camera_id(camera_id: str) -> str:
    if not CAMERA_ID.fullmatch(camera_id):
        raise InvalidOptionError(
            f"camera id {camera_id!r} is not valid: use 1-64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return camera_id


def add_camera(session: Session, spec: CameraSpec, *, replace: bool = False) -> Camera:
    """Register a camera; an existing id is refused unless ``replace`` (then it is updated)."""
    check_camera_id(spec.id)
    if not spec.name.strip():
        raise InvalidOptionError(f"camera {spec.id}: the name must not be empty")
    camera = session.get(Camera, spec.id)
    if camera is not None and not replace:
        raise InvalidOptionError(
            f"camera {spec.id!r} is already registered ({camera.name}); use --replace to update it"
        )
    if camera is None:
        camera = Camera(id=spec.id, name=spec.name, x=spec.x, y=spec.y, area=spec.area)
        session.add(camera)
    else:
        camera.name, camera.x, camera.y, camera.area = spec.name, spec.x, spec.y, spec.area
    session.flush()
    return camera


def get_camera(session: Session, camera_id: str) -> Camera:
    camera = session.get(Camera, camera_id)
    if camera is None:
        known = session.scalars(select(Camera.id).order_by(Camera.id).limit(20)).all()
        hint = f" Registered: {', '.join(known)}." if known else " No camera is registered yet."
        raise UnknownCameraError(
            f"unknown camera {camera_id!r}.{hint} Register it with "
            f"`reunite cameras add {camera_id} --name NAME --x X --y Y`"
        )
    return camera


def list_cameras(session: Session) -> list[Camera]:
    return list(session.scalars(select(Camera).order_by(Camera.id)))


def district_camera_id(synthetic_id: int) -> str:
    """The id a synthetic district's camera N gets when imported: ``cN``, as its folder is named."""
    return f"c{synthetic_id}"


def read_district_cameras(path: Path) -> list[CameraSpec]:
    """Camera specs from a synthetic district's ``cameras.json`` (or the district folder)."""
    path = path / "cameras.json" if path.is_dir() else path
    try:
        rows = json.loads(path.read_text())
        return [
            CameraSpec(
                id=district_camera_id(int(row["id"])),
                name=str(row["name"]),
                x=float(row["plan_position"][0]),
                y=float(row["plan_position"][1]),
                area=str(row.get("site")) if row.get("site") else None,
            )
            for row in rows
        ]
    except FileNotFoundError:
        raise DatasetLayoutError(f"{path} does not exist") from None
    except (ValueError, KeyError, TypeError, IndexError) as error:
        raise DatasetLayoutError(
            f"{path} is not a district cameras.json (a list of objects with id, name and "
            f"plan_position): {error}"
        ) from None

"""Request and response bodies of the API (pydantic), as the OpenAPI schema shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Path, Query
from pydantic import BaseModel, ConfigDict, Field

from reunite.pipeline.case_schema import Role

MAX_ID = 2**63 - 1
"""Ids are 64-bit database integers: a larger one is a 422, not a database overflow."""
Id = Annotated[int, Path(ge=1, le=MAX_ID)]
OptionalId = Annotated[int | None, Query(ge=1, le=MAX_ID)]
Cursor = Annotated[int, Query(ge=0, le=MAX_ID, description="Return only ids after this one")]
Limit = Annotated[int, Query(ge=1, le=1000)]


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="Seconds until the token expires.")
    role: Role


class Camera(BaseModel):
    id: str
    name: str
    x: float = Field(description="Plan position east, metres.")
    y: float = Field(description="Plan position north, metres.")
    area: str | None


class Photo(BaseModel):
    id: int
    kind: str
    box: tuple[float, float, float, float]
    found_by: str = Field(description="box, detector, face or whole: how the person was found.")
    crop_url: str
    image_url: str


class PhotoPreview(BaseModel):
    box: tuple[float, float, float, float]
    found_by: str
    width: int = Field(description="Of the photo upright (EXIF orientation applied).")
    height: int


class Case(BaseModel):
    id: int
    alias: str
    age_group: str | None
    description: str | None
    clothing_notes: str | None
    last_seen_time: datetime | None
    last_seen_place: str | None
    last_seen_camera_id: str | None
    last_seen_x: float | None
    last_seen_y: float | None
    status: str
    alert_threshold: float
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    photos: list[Photo]
    latest_alert_at: datetime | None = None
    unacknowledged_alerts: int = 0


class CaseUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    alias: str | None = Field(None, min_length=1, max_length=200)
    age_group: str | None = Field(None, pattern="^(child|adult|elderly)$")
    description: str | None = Field(None, max_length=2000)
    clothing_notes: str | None = Field(None, max_length=2000)
    last_seen_time: datetime | None = None
    last_seen_place: str | None = Field(None, max_length=500)
    last_seen_camera_id: str | None = Field(None, max_length=64)
    last_seen_x: float | None = Field(None, ge=-1e7, le=1e7)
    last_seen_y: float | None = Field(None, ge=-1e7, le=1e7)
    alert_threshold: float | None = Field(None, gt=0, lt=1)


class Sighting(BaseModel):
    sighting_id: int
    score: float | None = Field(description="Cosine similarity to the query (None on detail).")
    camera_id: str
    camera_name: str
    start_time: datetime
    end_time: datetime
    box: tuple[float, float, float, float]
    thumbnail_url: str | None
    decision: str | None = Field(None, description="confirmed or rejected, if decided.")


class ParsedDescription(BaseModel):
    description: dict = Field(description="The structured form: every field optional.")
    summary: str
    summary_ko: str
    ignored: list[str] = Field(description="Words that were not understood.")
    notes: list[str] = Field(description="Things understood but not searched.")


class DescribeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=2000, examples=["노란 우비, 남색 바지, 분홍 가방"])


class Matches(BaseModel):
    case_id: int | None
    since: datetime | None
    until: datetime | None
    cameras: list[str] | None
    basis: str = Field("photos", description="What was searched: photos, description or both.")
    description: dict | None = Field(None, description="The parsed description, shown back.")
    warnings: list[str] = []
    results: list[Sighting]


class CropInfo(BaseModel):
    id: int
    time: datetime
    box: tuple[float, float, float, float]
    quality: float
    url: str


class SightingDetail(Sighting):
    frames: int
    crops: list[CropInfo]
    frame_url: str | None = Field(
        None, description="The whole frame the best crop came from; ``box`` is in its pixels."
    )


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: str = Field(pattern="^(confirmed|rejected)$")
    note: str | None = Field(None, max_length=1000)


class DecisionOut(BaseModel):
    case_id: int
    sighting_id: int
    decision: str
    decided_at: datetime


class DecisionDetail(DecisionOut):
    note: str | None
    decided_by: str
    sighting: Sighting | None = Field(description="None once the sighting is past retention.")


class AlertOut(BaseModel):
    id: int
    case_id: int
    case_alias: str
    sighting: Sighting
    score: float
    created_at: datetime
    acknowledged_at: datetime | None


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=2, max_length=64, pattern="^[a-z0-9][a-z0-9._-]+$")
    password: str = Field(min_length=12, max_length=200)
    role: Role


class UserPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    disabled: bool | None = None
    role: Role | None = None
    password: str | None = Field(None, min_length=12, max_length=200)


class UserOut(BaseModel):
    username: str
    role: Role
    disabled: bool
    created_at: datetime


class AuditOut(BaseModel):
    seq: int
    time: datetime
    username: str | None
    role: str | None
    action: str
    case_id: int | None
    purpose: str | None
    params: dict
    result_ids: list
    outcome: str
    client: str | None


class AuditVerification(BaseModel):
    entries: int
    intact: bool
    problems: list[str]
    head_seq: int
    head_hash: str


class ModelInfo(BaseModel):
    name: str
    version: str
    architecture: str | None
    embedding_dim: int | None
    metrics: dict
    threshold: dict | None


class Health(BaseModel):
    status: str
    index_version: int | None
    model: str | None


class Problem(BaseModel):
    """An error (RFC 9457 problem details)."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None


def problem_responses(*statuses: int) -> dict[int | str, dict]:
    """OpenAPI entries for error statuses, all ``application/problem+json``."""
    return {
        status: {
            "model": Problem,
            "content": {
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
            },
            "description": "Problem details (RFC 9457)",
        }
        for status in statuses
    }

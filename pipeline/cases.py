"""Missing-person cases: register with photos, search for matches, confirm or reject them.

HTTP-free: the API and the CLI call these. A case's query is every photo's embedding (under the
active index's model) plus the embeddings of sightings an operator confirmed: each confirmation
adds an exemplar in the clothes and light of the day (query expansion). Rejected sightings are
never returned again for that case.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

import numpy as np
from sqlalchemy import case as sql_case
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from reunite.errors import ConflictError, InvalidOptionError, NotFoundError
from reunite.models.registry import Registry
from reunite.pipeline.case_schema import (
    AgeGroup,
    Alert,
    Case,
    CasePhoto,
    CaseStatus,
    Decision,
    MatchDecision,
    PhotoEmbedding,
    PhotoKind,
    User,
)
from reunite.pipeline.crop_store import CropStore
from reunite.pipeline.describe_search import search_description
from reunite.pipeline.detection import Detection, PersonDetector
from reunite.pipeline.embedding_model import EmbeddingModel
from reunite.pipeline.matching import Fusion
from reunite.pipeline.photos import clean_photo, find_person
from reunite.pipeline.quality import cut_crop
from reunite.pipeline.schema import Camera, Embedding, Sighting, utcnow
from reunite.pipeline.search import SightingResult, search_embeddings, window
from reunite.pipeline.workspace import Workspace

MAX_PHOTOS_PER_CASE = 10


def photo_store(ws: Workspace) -> CropStore:
    """Case photos live apart from sighting crops: a purge of footage never touches them."""
    return CropStore(ws.data_dir / "case_photos")


def default_threshold(model: EmbeddingModel, data_dir: Path | None = None) -> float:
    """The model card's calibrated "same person" threshold as a similarity (1 - distance), or a
    conservative 0.7 for a model without one (a loose ONNX file)."""
    name = model.version.split("@")[0]
    registry = Registry(data_dir=data_dir) if data_dir is not None else Registry.default()
    entry = registry.find(name) if "@" in model.version else None
    distance = ((entry.card.threshold or {}) if entry else {}).get("cosine_distance")
    return 1.0 - float(distance) if distance is not None else 0.7


@dataclass(slots=True)
class CaseFields:
    """What an operator says about a case; None leaves a field as it is on update."""

    alias: str | None = None
    age_group: str | None = None
    description: str | None = None
    clothing_notes: str | None = None
    last_seen_time: datetime | None = None
    last_seen_place: str | None = None
    last_seen_camera_id: str | None = None
    last_seen_x: float | None = None
    last_seen_y: float | None = None
    alert_threshold: float | None = None


def _apply(session: Session, case: Case, fields: CaseFields) -> None:
    if fields.alias is not None:
        alias = fields.alias.strip()
        if not alias or len(alias) > 200:
            raise InvalidOptionError("the case needs a name or alias of 1-200 characters")
        case.alias = alias
    if fields.age_group is not None:
        try:
            case.age_group = AgeGroup(fields.age_group).value
        except ValueError:
            groups = ", ".join(g.value for g in AgeGroup)
            raise InvalidOptionError(f"age group must be one of {groups}") from None
    if fields.last_seen_camera_id is not None:
        camera = session.get(Camera, fields.last_seen_camera_id)
        if camera is None:
            raise NotFoundError(f"there is no camera {fields.last_seen_camera_id!r}")
        case.last_seen_camera_id = camera.id
        if fields.last_seen_x is None and fields.last_seen_y is None:
            case.last_seen_x, case.last_seen_y = camera.x, camera.y
    if fields.last_seen_time is not None:
        if fields.last_seen_time.tzinfo is None:
            raise InvalidOptionError("the last-seen time needs a time zone, e.g. +09:00")
        if fields.last_seen_time > utcnow():
            raise InvalidOptionError("the last-seen time lies in the future")
    if fields.alert_threshold is not None and not 0.0 < fields.alert_threshold < 1.0:
        raise InvalidOptionError("the alert threshold is a similarity between 0 and 1")
    for name in (
        "description",
        "clothing_notes",
        "last_seen_time",
        "last_seen_place",
        "last_seen_x",
        "last_seen_y",
        "alert_threshold",
    ):
        value = getattr(fields, name)
        if value is not None:
            setattr(case, name, value)
    case.updated_at = utcnow()


def create_case(session: Session, fields: CaseFields, created_by: int, threshold: float) -> Case:
    if fields.alias is None:
        raise InvalidOptionError("the case needs a name or alias")
    case = Case(status=CaseStatus.OPEN.value, created_by=created_by, alert_threshold=threshold)
    _apply(session, case, fields)
    session.add(case)
    session.flush()
    return case


def get_case(session: Session, case_id: int) -> Case:
    case = session.get(Case, case_id)
    if case is None:
        raise NotFoundError(f"there is no case {case_id}")
    return case


def update_case(session: Session, case_id: int, fields: CaseFields) -> Case:
    case = get_case(session, case_id)
    if case.status != CaseStatus.OPEN.value:
        raise ConflictError(f"case {case_id} is closed; reopen it to change it")
    _apply(session, case, fields)
    return case


def set_status(session: Session, case_id: int, status: CaseStatus) -> Case:
    case = get_case(session, case_id)
    case.status = status.value
    case.closed_at = utcnow() if status == CaseStatus.CLOSED else None
    case.updated_at = utcnow()
    return case


def list_cases(session: Session, status: CaseStatus | None = None) -> list[Case]:
    stmt = select(Case).order_by(Case.id.desc())
    if status is not None:
        stmt = stmt.where(Case.status == status.value)
    return list(session.scalars(stmt))


@dataclass(frozen=True, slots=True)
class PreparedPhoto:
    """A checked photo with its person found and embedded, not stored yet."""

    kind: str
    jpeg: bytes
    crop: np.ndarray
    box: Detection
    found_by: str
    model: str
    vector: np.ndarray


def prepare_photo(
    data: bytes,
    model: EmbeddingModel,
    *,
    kind: str = PhotoKind.OTHER.value,
    box: tuple[float, float, float, float] | None = None,
    detector: PersonDetector | None = None,
    max_bytes: int | None = None,
    max_pixels: int | None = None,
) -> PreparedPhoto:
    """Check the photo, find the person, embed them. Writes nothing: a request with several
    photos prepares them all first, so that one bad photo leaves nothing stored."""
    try:
        kind = PhotoKind(kind).value
    except ValueError:
        raise InvalidOptionError(
            f"photo kind must be one of {', '.join(k.value for k in PhotoKind)}"
        ) from None
    limits = {k: v for k, v in (("max_bytes", max_bytes), ("max_pixels", max_pixels)) if v}
    photo = clean_photo(data, **limits)
    person = find_person(photo.image, box=box, detector=detector)
    crop = cut_crop(photo.image, person.box)
    vector = model.embedder.embed([crop])[0]
    return PreparedPhoto(kind, photo.jpeg, crop, person.box, person.found_by, model.version, vector)


def attach_photos(
    ws: Workspace, session: Session, case: Case, photos: Sequence[PreparedPhoto]
) -> list[CasePhoto]:
    """Store prepared photos with an open case (files first, rows in the caller's transaction)."""
    if case.status != CaseStatus.OPEN.value:
        raise ConflictError(f"case {case.id} is closed")
    if len(case.photos) + len(photos) > MAX_PHOTOS_PER_CASE:
        raise ConflictError(f"a case holds at most {MAX_PHOTOS_PER_CASE} photos")
    store = photo_store(ws)
    rows = []
    for photo in photos:
        row = CasePhoto(
            kind=photo.kind,
            image_sha256=store.put(photo.jpeg),
            crop_sha256=store.put(CropStore.encode(photo.crop)),
            x1=photo.box.x1,
            y1=photo.box.y1,
            x2=photo.box.x2,
            y2=photo.box.y2,
            found_by=photo.found_by,
        )
        row.embeddings = [_photo_embedding(photo.model, photo.vector)]
        case.photos.append(row)
        rows.append(row)
    case.updated_at = utcnow()
    session.flush()
    return rows


def _photo_embedding(model: str, vector: np.ndarray) -> PhotoEmbedding:
    data = np.asarray(vector, dtype="<f4")
    return PhotoEmbedding(model=model, dim=int(data.size), vector=data.tobytes())


def case_queries(ws: Workspace, session: Session, case: Case, model: EmbeddingModel) -> np.ndarray:
    """(Q, dim) query vectors: the photos and the confirmed sightings, under ``model``.

    A photo embedded with an older model (before a reindex) is embedded again from its stored
    crop, and the new vector kept."""
    vectors = []
    for photo in case.photos:
        found = next((e for e in photo.embeddings if e.model == model.version), None)
        if found is None:
            crop = photo_store(ws).get_image(photo.crop_sha256)
            found = _photo_embedding(model.version, model.embedder.embed([crop])[0])
            photo.embeddings.append(found)
        vectors.append(found.array())
    confirmed = session.scalars(
        select(Embedding)
        .join(MatchDecision, MatchDecision.sighting_id == Embedding.sighting_id)
        .where(
            MatchDecision.case_id == case.id,
            MatchDecision.decision == Decision.CONFIRMED.value,
            Embedding.model == model.version,
        )
    )
    vectors.extend(e.array() for e in confirmed)
    if not vectors:
        raise InvalidOptionError(
            f"case {case.id} has no photo yet: add a photo of the person to search by appearance"
        )
    return np.stack(vectors)


def cameras_within(session: Session, x: float, y: float, radius: float) -> list[str]:
    if radius <= 0:
        raise InvalidOptionError("the radius must be positive (plan units, metres)")
    return [c.id for c in session.scalars(select(Camera)) if math.hypot(c.x - x, c.y - y) <= radius]


@dataclass(frozen=True, slots=True)
class CaseMatch:
    result: SightingResult
    decision: str | None


Basis = Literal["auto", "photos", "description", "both"]


@dataclass(slots=True)
class MatchQuery:
    since: datetime | None = None
    """Default: the case's last-seen time (the person cannot be seen before going missing)."""
    until: datetime | None = None
    cameras: Sequence[str] | None = None
    near: tuple[float, float, float] | None = None
    """(x, y, radius) on the camera plan."""
    k: int = 20
    fusion: Fusion = "max"
    include_rejected: bool = False
    by: Basis = "auto"
    """What to search with. ``auto``: photos and description fused when the case has both and a
    photo that shows the day's clothes (a CCTV still, another photo, or a confirmed sighting);
    the description alone when the only photos are family photos (other clothes: fusing them
    made description search worse on the synthetic district, see the README); else photos."""


@dataclass(slots=True)
class CaseMatches:
    matches: list[CaseMatch]
    basis: str
    """What was searched: photos, description or both."""
    description: dict | None = None
    """The parsed description (English and Korean summaries, ignored words), to show back."""
    warnings: list[str] = field(default_factory=list)


def search_text(case: Case) -> str:
    """The appearance description to search with: the operator's corrected clothing notes (the
    console writes its edited chips there) or else the description as the caller gave it."""
    return (case.clothing_notes or case.description or "").strip()


def _basis(wanted: Basis, case: Case, queries: np.ndarray | None, confirmed: int) -> str:
    described = bool(search_text(case))
    if wanted == "auto":
        dressed = confirmed > 0 or any(p.kind != PhotoKind.FAMILY.value for p in case.photos)
        if described and queries is not None and dressed:
            return "both"
        return "description" if described else "photos"
    if wanted in ("photos", "both") and queries is None:
        raise InvalidOptionError(f"case {case.id} has no photo: add one, or search by description")
    if wanted in ("description", "both") and not described:
        raise InvalidOptionError(
            f"case {case.id} has no appearance description: add one (인상착의), or search by photo"
        )
    return wanted


def case_matches(
    ws: Workspace,
    case_id: int,
    model: EmbeddingModel,
    query: MatchQuery,
    retention_days: int,
) -> CaseMatches:
    """Ranked sightings for a case, rejected ones left out, each with its decision if any."""
    if not 1 <= query.k <= 500:
        raise InvalidOptionError("k must be between 1 and 500")
    with ws.db.session() as session:
        case = get_case(session, case_id)
        decisions = {
            d.sighting_id: d.decision
            for d in session.scalars(select(MatchDecision).where(MatchDecision.case_id == case_id))
        }
        confirmed = sum(d == Decision.CONFIRMED.value for d in decisions.values())
        queries = case_queries(ws, session, case, model) if case.photos or confirmed else None
        basis = _basis(query.by, case, queries, confirmed)
        if basis == "photos" and queries is None:
            raise InvalidOptionError(
                f"case {case_id} has neither a photo nor a description: add either to search"
            )
        cameras = list(query.cameras) if query.cameras else None
        if query.near is not None:
            near = set(cameras_within(session, *query.near))
            cameras = sorted(near & set(cameras)) if cameras else sorted(near)
            if not cameras:
                return CaseMatches([], basis)
        since = query.since or case.last_seen_time
        text = search_text(case)
    rejected = {s for s, d in decisions.items() if d == Decision.REJECTED.value}
    wanted = query.k + (0 if query.include_rejected else len(rejected))
    found = CaseMatches([], basis)
    if basis == "photos":
        where = window(since, query.until, cameras, retention_days)
        results = search_embeddings(ws, queries, where, k=wanted, fusion=query.fusion)
    else:
        described = search_description(
            ws,
            text or "",
            photo_embeddings=queries if basis == "both" else None,
            since=since,
            until=query.until,
            cameras=cameras,
            k=wanted,
            retention_days=retention_days,
        )
        results = described.results
        summary = described.as_dict()
        found.description = {key: summary[key] for key in ("description", "summary", "summary_ko")}
        found.warnings = described.warnings
    found.matches = [
        CaseMatch(r, decisions.get(r.sighting_id))
        for r in results
        if query.include_rejected or r.sighting_id not in rejected
    ][: query.k]
    return found


def decide(
    session: Session,
    case_id: int,
    sighting_id: int,
    decision: Decision,
    user_id: int,
    note: str | None = None,
) -> MatchDecision:
    case = get_case(session, case_id)
    if case.status != CaseStatus.OPEN.value:
        raise ConflictError(f"case {case_id} is closed")
    if session.get(Sighting, sighting_id) is None:
        raise NotFoundError(f"there is no sighting {sighting_id}")
    row = session.get(MatchDecision, (case_id, sighting_id))
    if row is None:
        row = MatchDecision(case_id=case_id, sighting_id=sighting_id)
        session.add(row)
    row.decision = decision.value
    row.note = note
    row.decided_by = user_id
    row.decided_at = utcnow()
    case.updated_at = utcnow()
    session.flush()
    return row


def photo_path(ws: Workspace, sha256: str) -> Path:
    return photo_store(ws).path(sha256)


def decisions_of(session: Session, case_id: int) -> list[tuple]:
    """(decision, decided-by user name, sighting, camera) of a case, oldest decision first."""
    stmt = (
        select(MatchDecision, User.username, Sighting, Camera)
        .join(User, User.id == MatchDecision.decided_by)
        .join(Sighting, Sighting.id == MatchDecision.sighting_id)
        .join(Camera, Camera.id == Sighting.camera_id)
        .where(MatchDecision.case_id == case_id)
        .order_by(MatchDecision.decided_at)
    )
    return [tuple(row) for row in session.execute(stmt)]


def alert_stats(session: Session) -> dict[int, tuple[datetime, int]]:
    """Per case: (newest alert time, unacknowledged alerts)."""
    unacknowledged = func.sum(sql_case((Alert.acknowledged_at.is_(None), 1), else_=0))
    stmt = select(Alert.case_id, func.max(Alert.created_at), unacknowledged).group_by(Alert.case_id)
    # max() keeps the column's type, so the time comes back timezone-aware like the column.
    return {case_id: (latest, int(count or 0)) for case_id, latest, count in session.execute(stmt)}

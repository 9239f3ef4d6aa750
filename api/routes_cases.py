"""Cases, their photos and matches, decisions, and ad-hoc photo search."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from reunite.api import schemas
from reunite.api.convert import case_out, result_out, sighting_out
from reunite.api.security import Principal, Staff, Supervisor, Svc, purpose_of, record
from reunite.api.service import Service
from reunite.errors import InvalidOptionError, NotFoundError, ReuniteError
from reunite.pipeline import cases as case_ops
from reunite.pipeline.case_schema import CasePhoto, CaseStatus, Decision
from reunite.pipeline.describe import parse_description
from reunite.pipeline.describe_search import search_description
from reunite.pipeline.photos import clean_photo, find_person
from reunite.pipeline.schema import utcnow
from reunite.pipeline.search import search_embeddings, window

router = APIRouter(tags=["cases"])

Kind = Literal["family", "cctv", "other"]


def _box(text: str | None) -> tuple[float, float, float, float] | None:
    if text is None or not text.strip():
        return None
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 4 or not values[0] < values[2] or not values[1] < values[3]:
        raise InvalidOptionError(f"box must be 'x1,y1,x2,y2' in pixels with x1<x2, y1<y2: {text!r}")
    return values  # type: ignore[return-value]


def _read(upload: UploadFile, limit: int) -> bytes:
    data = upload.file.read(limit + 1)  # one byte past the limit is enough to refuse it
    return data


def _prepare(
    svc: Service,
    uploads: list[UploadFile],
    kind: str,
    box: tuple[float, float, float, float] | None = None,
) -> list[case_ops.PreparedPhoto]:
    model = svc.model()
    return [
        case_ops.prepare_photo(
            _read(u, svc.max_upload_bytes),
            model,
            kind=kind,
            box=box,
            detector=svc.detector,
            max_bytes=svc.max_upload_bytes,
            max_pixels=svc.max_upload_pixels,
        )
        for u in uploads
    ]


@router.post("/cases", status_code=201, response_model=schemas.Case)
def create_case(
    svc: Svc,
    user: Staff,
    request: Request,
    alias: Annotated[str, Form(min_length=1, max_length=200)],
    age_group: Annotated[Literal["child", "adult", "elderly"] | None, Form()] = None,
    description: Annotated[str | None, Form(max_length=2000)] = None,
    clothing_notes: Annotated[str | None, Form(max_length=2000)] = None,
    last_seen_time: Annotated[datetime | None, Form()] = None,
    last_seen_place: Annotated[str | None, Form(max_length=500)] = None,
    last_seen_camera_id: Annotated[str | None, Form(max_length=64)] = None,
    photo_kind: Annotated[Kind, Form()] = "other",
    photos: Annotated[list[UploadFile] | None, File(description="JPEG, PNG or WebP")] = None,
) -> schemas.Case:
    """Register a missing person, with photos. Every photo is checked and its person found before
    anything is stored: one bad photo refuses the whole request."""
    prepared = _prepare(svc, photos or [], photo_kind)
    fields = case_ops.CaseFields(
        alias=alias,
        age_group=age_group,
        description=description,
        clothing_notes=clothing_notes,
        last_seen_time=last_seen_time,
        last_seen_place=last_seen_place,
        last_seen_camera_id=last_seen_camera_id,
    )
    threshold = case_ops.default_threshold(svc.model(), svc.ws.data_dir)
    with svc.ws.db.session() as session:
        case = case_ops.create_case(session, fields, user.user_id, threshold)
        case_ops.attach_photos(svc.ws, session, case, prepared)
        out = case_out(case)
    record(svc, user, "case_create", request=request, case_id=out.id, params={"alias": alias})
    return out


@router.get("/cases", response_model=list[schemas.Case])
def list_cases(
    svc: Svc, user: Staff, request: Request, status: Literal["open", "closed"] | None = None
) -> list[schemas.Case]:
    with svc.ws.db.session() as session:
        stats = case_ops.alert_stats(session)
        rows = [
            case_out(c, stats.get(c.id))
            for c in case_ops.list_cases(session, CaseStatus(status) if status else None)
        ]
    rows.sort(key=lambda c: (c.latest_alert_at is not None, c.latest_alert_at or c.updated_at))
    rows.reverse()  # cases with the newest alerts first, then the most recently changed
    record(svc, user, "case_list", request=request, result_ids=[c.id for c in rows])
    return rows


@router.get("/cases/{case_id}", response_model=schemas.Case)
def show_case(svc: Svc, user: Staff, request: Request, case_id: schemas.Id) -> schemas.Case:
    with svc.ws.db.session() as session:
        out = case_out(case_ops.get_case(session, case_id))
    record(svc, user, "case_view", request=request, case_id=case_id)
    return out


@router.patch("/cases/{case_id}", response_model=schemas.Case)
def update_case(
    svc: Svc, user: Staff, request: Request, case_id: schemas.Id, body: schemas.CaseUpdate
) -> schemas.Case:
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    with svc.ws.db.session() as session:
        out = case_out(case_ops.update_case(session, case_id, case_ops.CaseFields(**changes)))
    record(svc, user, "case_update", request=request, case_id=case_id, params=changes)
    return out


@router.post("/cases/{case_id}/close", response_model=schemas.Case)
def close_case(svc: Svc, user: Supervisor, request: Request, case_id: schemas.Id) -> schemas.Case:
    """Close a case (the person is found, or the search ends): no more alerts for it."""
    return _set_status(svc, user, request, case_id, CaseStatus.CLOSED, "case_close")


@router.post("/cases/{case_id}/reopen", response_model=schemas.Case)
def reopen_case(svc: Svc, user: Supervisor, request: Request, case_id: schemas.Id) -> schemas.Case:
    return _set_status(svc, user, request, case_id, CaseStatus.OPEN, "case_reopen")


def _set_status(
    svc: Service, user: Principal, request: Request, case_id: int, status: CaseStatus, action: str
) -> schemas.Case:
    with svc.ws.db.session() as session:
        out = case_out(case_ops.set_status(session, case_id, status))
    record(svc, user, action, request=request, case_id=case_id)
    return out


@router.post("/cases/{case_id}/photos", status_code=201, response_model=schemas.Case)
def add_photo(
    svc: Svc,
    user: Staff,
    request: Request,
    case_id: schemas.Id,
    photo: Annotated[UploadFile, File(description="JPEG, PNG or WebP")],
    kind: Annotated[Kind, Form()] = "other",
    box: Annotated[
        str | None, Form(description="The person's box 'x1,y1,x2,y2' in pixels, if known")
    ] = None,
) -> schemas.Case:
    prepared = _prepare(svc, [photo], kind, _box(box))
    with svc.ws.db.session() as session:
        case = case_ops.get_case(session, case_id)
        case_ops.attach_photos(svc.ws, session, case, prepared)
        out = case_out(case)
    record(svc, user, "photo_add", request=request, case_id=case_id, params={"kind": kind})
    return out


@router.get(
    "/cases/{case_id}/photos/{photo_id}/{which}",
    responses={200: {"content": {"image/jpeg": {}}}},
    response_class=Response,
)
def photo_image(
    svc: Svc,
    user: Staff,
    request: Request,
    case_id: schemas.Id,
    photo_id: schemas.Id,
    which: Literal["crop", "image"],
) -> Response:
    with svc.ws.db.session() as session:
        photo = session.get(CasePhoto, photo_id)
        if photo is None or photo.case_id != case_id:
            raise NotFoundError(f"case {case_id} has no photo {photo_id}")
        sha = photo.crop_sha256 if which == "crop" else photo.image_sha256
    data = case_ops.photo_store(svc.ws).get(sha)
    record(svc, user, "photo_view", request=request, case_id=case_id, result_ids=[photo_id])
    return Response(data, media_type="image/jpeg")


@router.get("/cases/{case_id}/matches", response_model=schemas.Matches)
async def case_matches(
    svc: Svc,
    user: Staff,
    request: Request,
    case_id: schemas.Id,
    since: Annotated[datetime | None, Query(description="Default: the last-seen time.")] = None,
    until: datetime | None = None,
    camera: Annotated[list[str] | None, Query(description="Camera ids; repeat it.")] = None,
    near_x: Annotated[float | None, Query(ge=-1e7, le=1e7)] = None,
    near_y: Annotated[float | None, Query(ge=-1e7, le=1e7)] = None,
    radius: Annotated[float | None, Query(gt=0, le=1e6, description="Metres")] = None,
    k: Annotated[int, Query(ge=1, le=200)] = 20,
    fusion: Literal["max", "mean"] = "max",
    include_rejected: bool = False,
    by: Annotated[
        Literal["auto", "photos", "description", "both"],
        Query(description="auto: photos and description fused when both tell the day's look"),
    ] = "auto",
) -> schemas.Matches:
    """Ranked sightings for the case: its photos and confirmed sightings are the query."""
    svc.search_limiter.hit(user.username, "searches")
    near = None
    if radius is not None or near_x is not None or near_y is not None:
        if radius is None or near_x is None or near_y is None:
            raise InvalidOptionError("give near_x, near_y and radius together")
        near = (near_x, near_y, radius)
    query = case_ops.MatchQuery(
        since=since,
        until=until,
        cameras=camera,
        near=near,
        k=k,
        fusion=fusion,
        include_rejected=include_rejected,
        by=by,
    )
    params = {k_: v for k_, v in request.query_params.multi_items()}
    purpose = purpose_of(request, f"case {case_id}")
    try:
        matches = await run_in_threadpool(
            case_ops.case_matches, svc.ws, case_id, svc.model(), query, svc.settings.retention_days
        )
    except ReuniteError as exc:
        record(
            svc,
            user,
            "matches_view",
            case_id=case_id,
            purpose=purpose,
            params=params,
            outcome=type(exc).__name__,
        )
        raise
    results = [result_out(m.result, m.decision) for m in matches.matches]
    record(
        svc,
        user,
        "matches_view",
        case_id=case_id,
        purpose=purpose,
        params=params,
        result_ids=[r.sighting_id for r in results],
    )
    return schemas.Matches(
        case_id=case_id,
        since=since,
        until=until,
        cameras=camera,
        basis=matches.basis,
        description=matches.description,
        warnings=matches.warnings,
        results=results,
    )


@router.put("/cases/{case_id}/matches/{sighting_id}", response_model=schemas.DecisionOut)
def decide(
    svc: Svc,
    user: Staff,
    request: Request,
    case_id: schemas.Id,
    sighting_id: schemas.Id,
    body: schemas.DecisionIn,
) -> schemas.DecisionOut:
    """Confirm (the sighting joins the case's query) or reject (never shown again)."""
    with svc.ws.db.session() as session:
        row = case_ops.decide(
            session, case_id, sighting_id, Decision(body.decision), user.user_id, body.note
        )
        out = schemas.DecisionOut(
            case_id=case_id,
            sighting_id=sighting_id,
            decision=row.decision,
            decided_at=row.decided_at,
        )
    record(
        svc,
        user,
        "match_decision",
        request=request,
        case_id=case_id,
        params={"decision": body.decision},
        result_ids=[sighting_id],
    )
    return out


@router.post("/search", response_model=schemas.Matches, tags=["search"])
def search(
    svc: Svc,
    user: Staff,
    request: Request,
    purpose: Annotated[str, Form(min_length=3, max_length=500, description="Why (audited)")],
    photos: Annotated[
        list[UploadFile] | None, File(description="Photos of one person (or give describe)")
    ] = None,
    describe: Annotated[
        str | None, Form(max_length=2000, description="Appearance description (인상착의)")
    ] = None,
    box: Annotated[str | None, Form(description="'x1,y1,x2,y2' of the person")] = None,
    since: Annotated[datetime | None, Form()] = None,
    until: Annotated[datetime | None, Form()] = None,
    camera: Annotated[list[str] | None, Form()] = None,
    near_x: Annotated[float | None, Form(ge=-1e7, le=1e7)] = None,
    near_y: Annotated[float | None, Form(ge=-1e7, le=1e7)] = None,
    radius: Annotated[float | None, Form(gt=0, le=1e6, description="Metres")] = None,
    k: Annotated[int, Form(ge=1, le=200)] = 20,
) -> schemas.Matches:
    """Ad-hoc search without a case, by photos, by description, or both fused; the stated
    purpose is audited."""
    svc.search_limiter.hit(user.username, "searches")
    photos = photos or []
    params = {
        "since": since,
        "until": until,
        "camera": camera,
        "k": k,
        "photos": len(photos),
        "describe": describe,
        "near": [near_x, near_y, radius],
    }
    basis, parsed, warnings = "photos", None, []
    try:
        if not photos and not (describe and describe.strip()):
            raise InvalidOptionError("give photos, a description (describe), or both")
        if (near_x, near_y, radius) != (None, None, None):
            if None in (near_x, near_y, radius):
                raise InvalidOptionError("give near_x, near_y and radius together")
            with svc.ws.db.session() as session:
                near = set(case_ops.cameras_within(session, near_x, near_y, radius))
            camera = sorted(near & set(camera)) if camera else sorted(near)
            if not camera:
                raise NotFoundError(f"no camera lies within {radius:g} m of ({near_x}, {near_y})")
        queries = None
        if photos:
            prepared = _prepare(svc, photos, "other", _box(box))
            queries = np.stack([p.vector for p in prepared])
        if describe and describe.strip():
            found = search_description(
                svc.ws,
                describe,
                photo_embeddings=queries,
                since=since,
                until=until,
                cameras=camera,
                k=k,
                retention_days=svc.settings.retention_days,
            )
            basis = "both" if queries is not None else "description"
            summary = found.as_dict()
            parsed = {key: summary[key] for key in ("description", "summary", "summary_ko")}
            warnings, hits = found.warnings, found.results
        else:
            where = window(since, until, camera, svc.settings.retention_days)
            hits = search_embeddings(svc.ws, queries, where, k=k)
        results = [result_out(r) for r in hits]
    except ReuniteError as exc:
        record(svc, user, "search", purpose=purpose, params=params, outcome=type(exc).__name__)
        raise
    result_ids = [r.sighting_id for r in results]
    record(svc, user, "search", purpose=purpose, params=params, result_ids=result_ids)
    return schemas.Matches(
        case_id=None,
        since=since,
        until=until,
        cameras=camera,
        basis=basis,
        description=parsed,
        warnings=warnings,
        results=results,
    )


@router.post("/photos/preview", response_model=schemas.PhotoPreview, tags=["search"])
def preview_photo(
    svc: Svc,
    user: Staff,
    photo: Annotated[UploadFile, File(description="JPEG, PNG or WebP")],
    box: Annotated[str | None, Form(description="'x1,y1,x2,y2' of the person")] = None,
) -> schemas.PhotoPreview:
    """Check a photo and find the person in it, storing nothing: what the console outlines
    before the operator registers the case."""
    cleaned = clean_photo(
        _read(photo, svc.max_upload_bytes),
        max_bytes=svc.max_upload_bytes,
        max_pixels=svc.max_upload_pixels,
    )
    found = find_person(cleaned.image, box=_box(box), detector=svc.detector)
    height, width = cleaned.image.shape[:2]
    b = found.box
    return schemas.PhotoPreview(
        box=(b.x1, b.y1, b.x2, b.y2), found_by=found.found_by, width=width, height=height
    )


@router.post("/describe/parse", response_model=schemas.ParsedDescription, tags=["search"])
def parse_description_text(user: Staff, body: schemas.DescribeIn) -> schemas.ParsedDescription:
    """The structured form of an appearance description (인상착의), to show back to the operator
    before searching: a wrong parse is visible, unknown words are listed."""
    parsed = parse_description(body.text)
    return schemas.ParsedDescription(
        description=parsed.model_dump(exclude={"ignored", "notes", "text"}),
        summary=parsed.summary(),
        summary_ko=parsed.summary("ko"),
        ignored=parsed.ignored,
        notes=parsed.notes,
    )


@router.get("/cases/{case_id}/decisions", response_model=list[schemas.DecisionDetail])
def decisions(
    svc: Svc, user: Staff, request: Request, case_id: schemas.Id
) -> list[schemas.DecisionDetail]:
    """Every confirmed and rejected sighting of the case, oldest decision first: the console
    draws the confirmed ones as the person's route."""
    with svc.ws.db.session() as session:
        case_ops.get_case(session, case_id)
        oldest = utcnow() - timedelta(days=svc.settings.retention_days)
        out = []
        for decision, username, sighting, camera in case_ops.decisions_of(session, case_id):
            visible = sighting is not None and sighting.end_time >= oldest
            out.append(
                schemas.DecisionDetail(
                    case_id=case_id,
                    sighting_id=decision.sighting_id,
                    decision=decision.decision,
                    decided_at=decision.decided_at,
                    note=decision.note,
                    decided_by=username,
                    sighting=sighting_out(sighting, camera) if visible else None,
                )
            )
    record(
        svc,
        user,
        "decisions_view",
        request=request,
        case_id=case_id,
        result_ids=[d.sighting_id for d in out],
    )
    return out

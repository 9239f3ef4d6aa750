"""Alerts to clients: polling, Server-Sent Events, an HMAC-signed webhook, and the scanner loop
that raises them (``pipeline.alerts.scan``) while the server runs."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import AsyncIterator
from typing import Annotated

import httpx
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from reunite.api import schemas
from reunite.api.convert import sighting_out
from reunite.api.security import STAFF, Principal, Staff, Svc, current_user_for_stream, record
from reunite.api.service import Service
from reunite.errors import NotFoundError, PermissionDeniedError
from reunite.pipeline import alerts as alert_ops
from reunite.pipeline.case_schema import Alert
from reunite.pipeline.schema import Camera, utcnow

log = logging.getLogger(__name__)
router = APIRouter(tags=["alerts"])

HEARTBEAT_S = 15.0
STREAM_POLL_S = 1.0
WEBHOOK_ATTEMPTS = 5


def _alerts_out(
    svc: Service, after: int, case_id: int | None, limit: int
) -> list[schemas.AlertOut]:
    rows = alert_ops.list_alerts(
        svc.ws,
        after_id=after,
        case_id=case_id,
        limit=limit,
        retention_days=svc.settings.retention_days,
    )
    with svc.ws.db.session() as session:
        cameras = {c.id: c for c in session.scalars(select(Camera))}
    return [
        schemas.AlertOut(
            id=alert.id,
            case_id=case.id,
            case_alias=case.alias,
            sighting=sighting_out(sighting, cameras[sighting.camera_id], alert.score),
            score=alert.score,
            created_at=alert.created_at,
            acknowledged_at=alert.acknowledged_at,
        )
        for alert, sighting, case in rows
    ]


@router.get("/alerts", response_model=list[schemas.AlertOut])
def poll_alerts(
    svc: Svc,
    user: Staff,
    request: Request,
    after: schemas.Cursor = 0,
    case_id: schemas.OptionalId = None,
    limit: schemas.Limit = 100,
) -> list[schemas.AlertOut]:
    """Alerts newer than ``after`` (an alert id), oldest first: poll with the last id seen."""
    out = _alerts_out(svc, after, case_id, limit)
    if out:
        record(svc, user, "alerts_view", request=request, result_ids=[a.id for a in out])
    return out


@router.get(
    "/alerts/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream_alerts(
    request: Request,
    svc: Svc,
    user: Annotated[Principal, Depends(current_user_for_stream)],
    after: Annotated[int | None, Query(ge=0, le=schemas.MAX_ID)] = None,
    case_id: schemas.OptionalId = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """Server-Sent Events: one ``alert`` event per new alert (its id is the event id, so a
    reconnecting EventSource resumes after the last one it got), and a comment line every 15 s."""
    if user.role.value not in {r.value for r in STAFF} | {"admin"}:
        raise PermissionDeniedError("only operator, supervisor or admin receive alerts")
    start = after if after is not None else None
    if start is None and last_event_id and last_event_id.isdigit():
        start = int(last_event_id)
    if start is None:  # a new listener: from now on
        with svc.ws.db.session() as session:
            start = session.scalar(select(Alert.id).order_by(Alert.id.desc()).limit(1)) or 0
    record(svc, user, "alerts_stream", request=request, params={"after": start, "case": case_id})

    async def events() -> AsyncIterator[str]:
        last, beat = start, time.monotonic()
        yield "retry: 2000\n\n"
        while not await request.is_disconnected():
            new = await run_in_threadpool(_alerts_out, svc, last, case_id, 100)
            for alert in new:
                last = alert.id
                yield f"id: {alert.id}\nevent: alert\ndata: {alert.model_dump_json()}\n\n"
            if new:
                ids = [a.id for a in new]
                await run_in_threadpool(record, svc, user, "alerts_view", result_ids=ids)
            if time.monotonic() - beat > HEARTBEAT_S:
                beat = time.monotonic()
                yield ": keep-alive\n\n"
            await asyncio.sleep(STREAM_POLL_S)

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


@router.post("/alerts/{alert_id}/acknowledge", response_model=schemas.AlertOut)
def acknowledge(svc: Svc, user: Staff, request: Request, alert_id: schemas.Id) -> schemas.AlertOut:
    with svc.ws.db.session() as session:
        alert = session.get(Alert, alert_id)
        if alert is None:
            raise NotFoundError(f"there is no alert {alert_id}")
        if alert.acknowledged_at is None:
            alert.acknowledged_at, alert.acknowledged_by = utcnow(), user.user_id
    record(svc, user, "alert_acknowledge", request=request, result_ids=[alert_id])
    found = _alerts_out(svc, alert_id - 1, None, 1)
    if not found or found[0].id != alert_id:
        raise NotFoundError(f"alert {alert_id} refers to a sighting past retention")
    return found[0]


# -- the scanner and the webhook ---------------------------------------------------------------


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256 over ``timestamp.body``: the receiver recomputes it and
    refuses old timestamps, so a captured delivery cannot be replayed later."""
    mac = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def deliver_webhooks(svc: Service) -> None:
    """POST every alert not yet delivered (up to 5 tries each, one per scan)."""
    url = svc.settings.webhook_url
    if not url:
        return
    key = svc.settings.webhook_secret
    secret = key.get_secret_value().encode() if key is not None else b""
    with svc.ws.db.session() as session:
        pending = list(
            session.scalars(
                select(Alert.id).where(
                    (Alert.webhook_status.is_(None)) | (Alert.webhook_status != "delivered"),
                    Alert.webhook_attempts < WEBHOOK_ATTEMPTS,
                )
            )
        )
    for alert_id in pending:
        found = _alerts_out(svc, alert_id - 1, None, 1)
        if not found or found[0].id != alert_id:
            continue
        body = found[0].model_dump_json().encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Reunite-Timestamp": timestamp,
            "X-Reunite-Signature": sign(secret, timestamp, body),
            "X-Reunite-Event": "alert",
        }
        try:
            response = httpx.post(url, content=body, headers=headers, timeout=5.0)
            status = "delivered" if response.is_success else f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            status = f"failed: {type(exc).__name__}"
        with svc.ws.db.session() as session:
            alert = session.get(Alert, alert_id)
            if alert is not None:
                alert.webhook_status = status
                alert.webhook_attempts += 1


def scan_once(svc: Service) -> list[alert_ops.NewAlert]:
    if svc.ws.active_version() is None:
        return []
    new = alert_ops.scan(svc.ws, svc.model(), svc.settings.retention_days)
    if new:
        log.info("raised %d alert(s): %s", len(new), [a.alert_id for a in new])
    deliver_webhooks(svc)
    return new


async def scanner(svc: Service) -> None:
    """Runs for the server's lifetime; a failed scan is logged and tried again next period."""
    await run_in_threadpool(alert_ops.start_cursor, svc.ws)
    while True:
        try:
            await run_in_threadpool(scan_once, svc)
        except Exception:
            log.exception("alert scan failed; trying again")
        await asyncio.sleep(svc.settings.alert_poll_seconds)

"""Alerts: newly ingested sightings that match an open case above its threshold.

Ingest runs in other processes (CLI jobs, other machines), so alerts are not raised by the ingest
itself: a scanner reads the sightings added since it last looked (a cursor kept in the
database) and scores them against every open case's query vectors. The API runs it every few
seconds; ``reunite alerts scan`` runs it once (cron). Several scanners at once are safe: an alert
is unique per (case, sighting), and the cursor only moves forward.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from reunite.errors import ReuniteError
from reunite.pipeline.case_schema import (
    Alert,
    AlertCursor,
    Case,
    CaseStatus,
    Decision,
    MatchDecision,
)
from reunite.pipeline.cases import case_queries, search_text
from reunite.pipeline.describe import parse_description
from reunite.pipeline.describe_search import default_attribute_version, field_probabilities
from reunite.pipeline.embedding_model import EmbeddingModel
from reunite.pipeline.schema import Embedding, Sighting, SightingAttributes, utcnow
from reunite.pipeline.workspace import Workspace

log = logging.getLogger(__name__)

SCAN_BATCH = 2000
DESCRIPTION_MIN_PARTS = 3
DESCRIPTION_ALERT_P = 0.6
"""A case with a description but no photo alerts on a sighting when at least 3 parts of the
description can be scored on it and their geometric-mean probability is at least 0.6: the
attribute probabilities are calibrated, so on average each described part is more likely than
not. Vaguer descriptions raise no alerts (they would match half the district); search finds
them."""


@dataclass(frozen=True, slots=True)
class NewAlert:
    alert_id: int
    case_id: int
    sighting_id: int
    score: float


def _cursor(session: Session) -> AlertCursor:
    cursor = session.get(AlertCursor, 1)
    if cursor is None:
        # First scan ever: start from now, not from the archive (old footage is not "new").
        newest = session.scalar(select(func.max(Sighting.id))) or 0
        cursor = AlertCursor(id=1, last_sighting_id=newest)
        session.add(cursor)
        session.flush()
    return cursor


def start_cursor(ws: Workspace) -> int:
    """Create the cursor at the newest sighting if there is none yet; returns where it stands."""
    with ws.db.session() as session:
        return _cursor(session).last_sighting_id


def scan(ws: Workspace, model: EmbeddingModel, retention_days: int) -> list[NewAlert]:
    """Score the sightings added since the last scan against the open cases; one batch."""
    oldest = utcnow() - timedelta(days=retention_days)
    try:
        with ws.db.session() as session:
            cursor = _cursor(session)
            rows = list(
                session.execute(
                    select(Sighting.id, Sighting.end_time, Embedding)
                    .join(Embedding, Embedding.sighting_id == Sighting.id)
                    .where(Sighting.id > cursor.last_sighting_id, Embedding.model == model.version)
                    .order_by(Sighting.id)
                    .limit(SCAN_BATCH)
                )
            )
            if not rows:
                return []
            cursor.last_sighting_id = max(r[0] for r in rows)
            fresh = [(sid, end, emb) for sid, end, emb in rows if end >= oldest]
            created: list[Alert] = []
            if fresh:
                vectors = np.stack([emb.array() for _, _, emb in fresh])
                cases = session.scalars(
                    select(Case).where(Case.status == CaseStatus.OPEN.value)
                ).all()
                for case in cases:
                    created.extend(_alerts_for(ws, session, case, model, fresh, vectors))
            session.flush()
            return [NewAlert(a.id, a.case_id, a.sighting_id, a.score) for a in created]
    except IntegrityError:
        return []  # another scanner raised the same alerts first; the next scan goes on


def _alerts_for(
    ws: Workspace,
    session: Session,
    case: Case,
    model: EmbeddingModel,
    fresh: list,
    vectors: np.ndarray,
) -> list[Alert]:
    confirmed = session.scalar(
        select(func.count()).where(
            MatchDecision.case_id == case.id, MatchDecision.decision == Decision.CONFIRMED.value
        )
    )
    if not case.photos and not confirmed:
        return _description_alerts(session, case, fresh)
    queries = case_queries(ws, session, case, model)
    scores = (vectors @ queries.T).max(axis=1)
    rejected = set(
        session.scalars(
            select(MatchDecision.sighting_id).where(
                MatchDecision.case_id == case.id,
                MatchDecision.decision == Decision.REJECTED.value,
            )
        )
    )
    since: datetime | None = case.last_seen_time
    alerts = []
    for (sighting_id, end_time, _), score in zip(fresh, scores, strict=True):
        if score < case.alert_threshold or sighting_id in rejected:
            continue
        if since is not None and end_time < since:
            continue  # seen before going missing: not where the person is now
        alert = Alert(case_id=case.id, sighting_id=sighting_id, score=float(score))
        session.add(alert)
        alerts.append(alert)
    return alerts


def _description_alerts(session: Session, case: Case, fresh: list) -> list[Alert]:
    text = search_text(case)
    if not text:
        return []
    try:
        description = parse_description(text)
    except ReuniteError as error:  # shown to the operator when they search; not alertable
        log.info("case %d: description not alertable (%s)", case.id, error)
        return []
    version = default_attribute_version()
    ids = [sighting_id for sighting_id, _, _ in fresh]
    probabilities = dict(
        session.execute(
            select(SightingAttributes.sighting_id, SightingAttributes.probabilities).where(
                SightingAttributes.sighting_id.in_(ids), SightingAttributes.model == version
            )
        ).all()
    )
    alerts = []
    for sighting_id, end_time, _ in fresh:
        probs = probabilities.get(sighting_id)
        if probs is None or (case.last_seen_time is not None and end_time < case.last_seen_time):
            continue
        parts = np.array(list(field_probabilities(description, probs).values()))
        if len(parts) < DESCRIPTION_MIN_PARTS:
            continue
        score = float(np.exp(np.log(np.maximum(parts, 1e-6)).mean()))
        if score >= DESCRIPTION_ALERT_P:
            alert = Alert(case_id=case.id, sighting_id=sighting_id, score=score)
            session.add(alert)
            alerts.append(alert)
    return alerts


def list_alerts(
    ws: Workspace,
    *,
    after_id: int = 0,
    case_id: int | None = None,
    limit: int = 100,
    retention_days: int | None = None,
) -> list[tuple[Alert, Sighting, Case]]:
    """Alerts with id > ``after_id``, oldest first (what a client has not seen yet)."""
    stmt = (
        select(Alert, Sighting, Case)
        .join(Sighting, Sighting.id == Alert.sighting_id)
        .join(Case, Case.id == Alert.case_id)
        .where(Alert.id > after_id)
        .order_by(Alert.id)
        .limit(limit)
    )
    if case_id is not None:
        stmt = stmt.where(Alert.case_id == case_id)
    if retention_days is not None:
        stmt = stmt.where(Sighting.end_time >= utcnow() - timedelta(days=retention_days))
    with ws.db.session() as session:
        return [tuple(row) for row in session.execute(stmt)]  # type: ignore[misc]

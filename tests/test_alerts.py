"""The alert scanner on a real database: description-only cases (no usable photo) alert on new
sightings whose stored attributes fit the description well, and only then.

Bad input tried: a vague description (two parts: it would match half the district), a sighting
seen before the person went missing, a sighting whose attributes contradict the description, a
closed case, a description that cannot be parsed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from reunite.config import Settings
from reunite.pipeline import alerts
from reunite.pipeline.accounts import add_user
from reunite.pipeline.cameras import CameraSpec, add_camera
from reunite.pipeline.case_schema import CaseStatus, Role
from reunite.pipeline.cases import CaseFields, create_case, set_status
from reunite.pipeline.describe_search import default_attribute_version
from reunite.pipeline.embedding_model import load_embedding_model
from reunite.pipeline.schema import Embedding, Sighting, SightingAttributes, Source
from reunite.pipeline.workspace import Workspace

NOW = datetime.now(UTC)


def attributes(upper: str, upper_type: str, lower: str) -> dict:
    """Calibrated-looking probabilities: 0.85 on the given values, the rest spread."""

    def dist(value: str, others: list[str]) -> dict[str, float]:
        rest = 0.15 / len(others)
        return {value: 0.85, **{o: rest for o in others if o != value}}

    colours = ["yellow", "navy", "black", "red", "grey"]
    return {
        "upper_colour": dist(upper, colours),
        "upper_type": dist(upper_type, ["raincoat", "t-shirt", "coat"]),
        "lower_colour": dist(lower, colours),
        "lower_type": dist("trousers", ["trousers", "skirt"]),
        "accessories": {"backpack": 0.1},
    }


@pytest.fixture
def ws(tmp_path):
    workspace = Workspace.open(Settings(data_dir=tmp_path, database_url=""))
    yield workspace
    workspace.close()


def add_sighting(ws, model, sighting_id: int, when: datetime, probs: dict) -> None:
    with ws.db.session() as session:
        session.add(
            Sighting(
                id=sighting_id,
                camera_id="c1",
                source_id=1,
                chunk_index=sighting_id,
                track_id=1,
                start_time=when,
                end_time=when,
                frames=5,
                quality=0.5,
                x1=0,
                y1=0,
                x2=40,
                y2=100,
            )
        )
        session.flush()
        vector = np.random.default_rng(sighting_id).normal(size=model.dim).astype(np.float32)
        session.add(Embedding.from_array(model.version, vector, sighting_id=sighting_id))
        session.add(
            SightingAttributes(
                sighting_id=sighting_id, model=default_attribute_version(), probabilities=probs
            )
        )


def test_a_description_only_case_alerts_on_a_fitting_new_sighting_only(ws):
    model = load_embedding_model("default")
    with ws.db.session() as session:
        add_camera(session, CameraSpec("c1", "Gate"), replace=True)
        session.add(Source(id=1, camera_id="c1", uri="x", kind="frames", fingerprint="f"))
        user = add_user(session, "op", "a long enough password", Role.OPERATOR)
        fields = CaseFields(
            alias="할머니",
            description="노란 우비, 남색 바지",
            last_seen_time=NOW - timedelta(hours=1),
        )
        described = create_case(session, fields, user.id, 0.6).id
        vague = create_case(
            session, CaseFields(alias="vague", description="남색 바지"), user.id, 0.6
        ).id
        closed = create_case(
            session, CaseFields(alias="closed", description="노란 우비, 남색 바지"), user.id, 0.6
        ).id
        set_status(session, closed, CaseStatus.CLOSED)
        broken = create_case(
            session, CaseFields(alias="bad", description="child and elderly"), user.id, 0.6
        ).id
    ws.index_for(model.version, model.dim)
    assert alerts.start_cursor(ws) == 0
    fits = attributes("yellow", "raincoat", "navy")
    add_sighting(ws, model, 1, NOW - timedelta(minutes=5), fits)
    add_sighting(ws, model, 2, NOW - timedelta(minutes=5), attributes("red", "coat", "black"))
    add_sighting(ws, model, 3, NOW - timedelta(hours=3), fits)  # before going missing
    raised = alerts.scan(ws, model, retention_days=30)
    assert [(a.case_id, a.sighting_id) for a in raised] == [(described, 1)]
    assert 0.6 <= raised[0].score <= 0.9  # 0.85 each, navy a little helped by black
    assert {vague, closed, broken}.isdisjoint(a.case_id for a in raised)
    assert alerts.scan(ws, model, retention_days=30) == []  # the cursor moved on

"""The same store on PostgreSQL: migrations, drift, job locks, ingest, cases and the audit chain.

Runs only when ``REUNITE_TEST_POSTGRES_URL`` names an empty database the test may fill and
drop tables in (e.g. ``postgresql+psycopg://reunite:pw@localhost/reunite_test``); skipped
otherwise, with that reason. Bad input tried: a second running job on the same camera (the
partial unique index), an edited audit row.
"""

from __future__ import annotations

import os
from datetime import UTC
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from reunite.config import Settings
from reunite.errors import JobConflictError
from reunite.pipeline import accounts, audit
from reunite.pipeline.cameras import add_camera, read_district_cameras
from reunite.pipeline.case_schema import Role
from reunite.pipeline.cases import CaseFields, create_case
from reunite.pipeline.detectors import detector_factory
from reunite.pipeline.embedding_model import load_embedding_model
from reunite.pipeline.ingest import IngestOptions, ingest_source
from reunite.pipeline.jobs import run_job
from reunite.pipeline.schema import Base, Sighting
from reunite.pipeline.search import search_embeddings, window
from reunite.pipeline.workspace import Workspace

URL = os.environ.get("REUNITE_TEST_POSTGRES_URL", "")
SAMPLE = Path(__file__).resolve().parents[1] / "data" / "samples" / "district"

pytestmark = pytest.mark.skipif(
    not URL, reason="set REUNITE_TEST_POSTGRES_URL to an empty PostgreSQL database to run these"
)


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    from sqlalchemy import create_engine

    engine = create_engine(URL)
    with engine.begin() as conn:  # start empty: drop what an earlier run left
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    workspace = Workspace.open(Settings(data_dir=tmp_path_factory.mktemp("pg"), database_url=URL))
    yield workspace
    workspace.close()


def test_migrations_match_the_models_on_postgres(ws):
    assert ws.db.engine.dialect.name == "postgresql"
    with ws.db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_ingest_search_cases_and_audit_on_postgres(ws):
    model = load_embedding_model("default")
    with ws.db.session() as session:
        for spec in read_district_cameras(SAMPLE):
            add_camera(session, spec, replace=True)
    version = ws.index_for(model.version, model.dim)
    with run_job(ws.db, "ingest", "camera:c1", {"camera": "c1"}) as job:
        with pytest.raises(JobConflictError), run_job(ws.db, "ingest", "camera:c1", {}):
            pass
        report = ingest_source(
            ws,
            model,
            version,
            "c1",
            SAMPLE / "cameras" / "c1",
            detector_factory(),
            IngestOptions(warmup_frames=3),
            job,
        )
    assert report.frames == 12
    with ws.db.session() as session:
        rows = session.query(Sighting).all()
        assert all(r.start_time.tzinfo is UTC for r in rows)
    with ws.db.session() as session:
        user = accounts.add_user(session, "pg-op", "a long enough password", Role.OPERATOR)
        case = create_case(session, CaseFields(alias="pg case"), user.id, 0.6)
        assert case.id >= 1
    if report.sightings:
        vectors = model.embedder.embed([ws.crops.get_image(rows[0].thumbnail_sha256)])
        results = search_embeddings(ws, vectors, window(None, None, None, 3650), k=5)
        assert results[0].sighting_id == rows[0].id
    for i in range(3):
        audit.record(ws.db, audit.Actor("pg-op", "operator"), "search", params={"i": i})
    assert audit.verify(ws.db)[1] == []
    with ws.db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET purpose = 'x' WHERE seq = 2"))
    assert [p.seq for p in audit.verify(ws.db)[1]] == [2]

"""Ingesting a live stream that drops: the frames read are kept and committed, every drop and
reconnect is recorded on the job, and the source is not marked finished (a stream never is)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from test_sources import MjpegCamera

from reunite.config import Settings
from reunite.pipeline.cameras import CameraSpec, add_camera
from reunite.pipeline.detectors import detector_factory
from reunite.pipeline.embedding_model import load_embedding_model
from reunite.pipeline.ingest import IngestOptions, ingest_source
from reunite.pipeline.jobs import run_job
from reunite.pipeline.schema import IngestChunk, Job, Source
from reunite.pipeline.workspace import Workspace


def test_a_dropping_stream_is_ingested_until_it_gives_up(tmp_path: Path):
    camera = MjpegCamera([40, 0, 40])  # 40 frames, drop, one refusal, 40 frames, then offline
    try:
        ws = Workspace.open(Settings(data_dir=tmp_path, database_url=""))
        with ws.db.session() as session:
            add_camera(session, CameraSpec("gate", "Gate (live)"))
        model = load_embedding_model("color_histogram")
        version = ws.index_for(model.version, model.dim)
        options = IngestOptions(fps=20, chunk_frames=10, max_reconnects=2, reconnect_base_s=0.05)
        with run_job(ws.db, "ingest", "camera:gate", {"paths": [camera.url]}) as job:
            report = ingest_source(
                ws, model, version, "gate", camera.url, detector_factory(), options, job
            )
            job_id = job.id
        assert camera.sent == 80 and report.frames >= 30, (camera.sent, report.frames)
        assert any("dropped after 40 frames" in e for e in report.errors)
        assert any("gave up" in e for e in report.errors)
        with ws.db.session() as session:
            job = session.get(Job, job_id)
            assert job.status == "done" and any("reconnected" in e for e in job.errors)
            source = session.scalars(select(Source)).one()
            assert source.finished_at is None and source.kind == "stream"
            chunks = session.scalars(select(IngestChunk)).all()
            assert sum(c.frames for c in chunks) == report.frames
        ws.close()
    finally:
        camera.close()

"""Pipelined ingest (reader thread, writer thread) gives exactly what the sequential loop gives.
Bad input tried: a frame source that fails half way, a write that fails (the next submit must
raise it and stop the tracking), a consumer that stops early (the reader must stop)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from reunite.config import Settings
from reunite.errors import SourceError
from reunite.pipeline.cameras import add_camera, read_district_cameras
from reunite.pipeline.detectors import detector_factory
from reunite.pipeline.embedding_model import load_embedding_model
from reunite.pipeline.ingest import IngestOptions, ingest_source
from reunite.pipeline.overlap import ChunkWriter, prefetch
from reunite.pipeline.schema import IngestChunk, Sighting
from reunite.pipeline.workspace import Workspace

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "samples" / "district"


def test_prefetch_keeps_order_and_raises_where_the_source_failed():
    def source():
        yield from range(5)
        raise SourceError("stream lost")

    seen = []
    with pytest.raises(SourceError, match="stream lost"):
        for item in prefetch(source(), depth=2):
            seen.append(item)
    assert seen == [0, 1, 2, 3, 4]
    assert list(prefetch(iter(range(7)), depth=0)) == list(range(7))


def test_prefetch_stops_reading_when_the_consumer_stops():
    read = []

    def source():
        for i in range(1000):
            read.append(i)
            yield i

    frames = prefetch(source(), depth=3)
    assert [next(frames) for _ in range(4)] == [0, 1, 2, 3]
    frames.close()
    time.sleep(0.2)
    assert len(read) <= 4 + 3 + 2, "the reader must stop a few items after the consumer"
    assert not [t for t in threading.enumerate() if t.name == "ingest-reader"]


def test_chunk_writer_writes_in_order_and_stops_on_a_failed_write():
    done = []

    def write(i: int, fail: bool = False):
        def run():
            time.sleep(0.01 * (3 - i % 3))  # later chunks would finish first if run in parallel
            if fail:
                raise OSError("disk full")
            done.append(i)

        return run

    writer = ChunkWriter(pipelined=True)
    for i in range(6):
        writer.submit(write(i))
    writer.close()
    assert done == list(range(6))
    writer = ChunkWriter(pipelined=True)
    writer.submit(write(0, fail=True))
    with pytest.raises(OSError, match="disk full"):
        writer.submit(write(1))  # the caller learns of the failure before tracking more
    writer.close()


def _ingest(tmp: Path, model, options: IngestOptions) -> dict:
    ws = Workspace.open(Settings(data_dir=tmp, database_url=""))
    try:
        specs = read_district_cameras(SAMPLE)
        with ws.db.session() as session:
            for spec in specs:
                add_camera(session, spec, replace=True)
        version = ws.index_for(model.version, model.dim)
        for spec in specs:
            ingest_source(
                ws, model, version, spec.id, SAMPLE / "cameras" / spec.id, detector_factory(),
                options,
            )  # fmt: skip
        store = ws.open_store(ws.active_version())
        with ws.db.session() as session:
            sightings = {
                (s.camera_id, s.chunk_index, s.track_id, s.start_time.isoformat(), s.frames): (
                    store.get_vectors(np.array([s.id]))[0]
                )
                for s in session.scalars(select(Sighting))
            }
            chunks = [
                (c.chunk_index, c.frames, c.sightings, c.next_frame_index, c.detector_state)
                for c in session.scalars(
                    select(IngestChunk).order_by(IngestChunk.source_id, IngestChunk.chunk_index)
                )
            ]
        return {"sightings": sightings, "chunks": chunks}
    finally:
        ws.close()


def test_pipelined_ingest_equals_the_sequential_one(tmp_path):
    model = load_embedding_model("default", data_dir=tmp_path / "models")
    base = {"chunk_frames": 10, "warmup_frames": 3, "attributes": False}
    sequential = _ingest(
        tmp_path / "seq", model, IngestOptions(**base, pipelined=False, prefetch_frames=0)
    )
    pipelined = _ingest(tmp_path / "pipe", model, IngestOptions(**base, prefetch_frames=4))
    assert sequential["sightings"], "the sample district has people to find"
    assert len(sequential["chunks"]) >= 4, "two chunks per camera at least"
    assert pipelined["chunks"] == sequential["chunks"]
    assert pipelined["sightings"].keys() == sequential["sightings"].keys()
    for key, vector in sequential["sightings"].items():
        np.testing.assert_allclose(pipelined["sightings"][key], vector, atol=1e-6)

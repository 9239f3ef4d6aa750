"""The ingest pipeline end to end on rendered footage: real detector, tracker, shipped model,
SQLite and FAISS on disk. Bad input tried: an unknown camera, the same file twice, a second ingest
of a camera while one runs, a disk that fills up in the middle of a chunk, a truncated video, a
clip with nobody in it, and kill -9 in the middle of an ingest and of a reindex."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from sqlalchemy import func, select

from reunite.config import Settings
from reunite.errors import DiskFullError, JobConflictError, UnknownCameraError
from reunite.pipeline.cameras import add_camera, read_district_cameras
from reunite.pipeline.detectors import detector_factory
from reunite.pipeline.embedding_model import load_embedding_model
from reunite.pipeline.ingest import IngestOptions, ingest_source
from reunite.pipeline.jobs import FAILED, run_job
from reunite.pipeline.schema import Crop, Embedding, Job, Sighting
from reunite.pipeline.vector_store import SearchFilter
from reunite.pipeline.workspace import Workspace

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
CHUNK = 30  # sampled frames per chunk: the 90-frame clips make three chunks per camera


def workspace(tmp: Path) -> Workspace:
    return Workspace.open(Settings(data_dir=tmp, database_url=""))


def register(ws: Workspace, district: Path) -> list[str]:
    specs = read_district_cameras(district)
    with ws.db.session() as session:
        for spec in specs:
            add_camera(session, spec, replace=True)
    return [s.id for s in specs]


@pytest.fixture(scope="module")
def model():
    return load_embedding_model("default")


def ingest_all(ws: Workspace, district: Path, model, chunk: int = CHUNK) -> list:
    cameras = register(ws, district)
    version = ws.index_for(model.version, model.dim)
    reports = []
    for camera in cameras:
        with run_job(ws.db, "ingest", f"camera:{camera}", {"camera": camera}) as job:
            reports.append(
                ingest_source(
                    ws,
                    model,
                    version,
                    camera,
                    district / "cameras" / camera,
                    detector_factory(),
                    IngestOptions(chunk_frames=chunk),
                    job,
                )
            )
    return reports


def snapshot(ws: Workspace) -> dict:
    """What a run produced, keyed by content (ids may differ between runs)."""
    version = ws.active_version()
    store = ws.open_store(version)
    rows = {}
    with ws.db.session() as session:
        for s in session.scalars(select(Sighting)):
            key = (
                s.camera_id,
                s.chunk_index,
                s.track_id,
                s.start_time.isoformat(),
                s.end_time.isoformat(),
                round(s.x1, 2),
                round(s.y1, 2),
                round(s.x2, 2),
            )
            rows[key] = (sorted(c.sha256 for c in s.crops), store.get_vectors(np.array([s.id]))[0])
    assert store.count() == len(rows), "the index must hold exactly the database's sightings"
    return rows


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert a[key][0] == b[key][0]
        np.testing.assert_allclose(a[key][1], b[key][1], atol=1e-5)


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory, pipeline_district, model):
    tmp = tmp_path_factory.mktemp("clean")
    ws = workspace(tmp)
    reports = ingest_all(ws, pipeline_district, model)
    yield ws, reports
    ws.close()


def test_ingest_finds_sightings_with_crops_embeddings_and_index(clean_run):
    ws, reports = clean_run
    assert sum(r.sightings for r in reports) >= 10
    assert all(r.frames == 90 for r in reports)
    with ws.db.session() as session:
        sightings = list(session.scalars(select(Sighting)))
        for s in sightings:
            assert s.crops, "every sighting keeps its best crops"
            assert s.start_time <= s.end_time
            for crop in s.crops:
                assert ws.crops.exists(crop.sha256)
        assert session.scalar(select(func.count(Embedding.id))) == len(sightings)
    snap = snapshot(ws)
    assert len(snap) == len(sightings)


def test_a_sighting_finds_itself_first_and_filters_work(clean_run):
    ws, _ = clean_run
    store = ws.open_store(ws.active_version())
    with ws.db.session() as session:
        s = session.scalars(select(Sighting).order_by(Sighting.id)).first()
        sid, camera, start = s.id, s.camera_id, s.start_time
    vector = store.get_vectors(np.array([sid]))
    scores, ids = store.search(vector, 5)
    assert ids[0, 0] == sid and scores[0, 0] == pytest.approx(1.0, abs=1e-4)
    _, ids = store.search(vector, 5, SearchFilter(cameras=frozenset({"no-such-camera"})))
    assert (ids == -1).all()
    _, ids = store.search(vector, 50, SearchFilter(cameras=frozenset({camera})))
    with ws.db.session() as session:
        cams = set(
            session.scalars(
                select(Sighting.camera_id).where(Sighting.id.in_(ids[ids >= 0].tolist()))
            )
        )
    assert cams == {camera}
    _, ids = store.search(vector, 5, SearchFilter(end=start))
    assert sid not in ids


def test_reingesting_the_same_footage_adds_nothing(clean_run, pipeline_district, model):
    ws, _ = clean_run
    before = snapshot(ws)
    version = ws.index_for(model.version, model.dim)
    report = ingest_source(
        ws,
        model,
        version,
        "c1",
        pipeline_district / "cameras" / "c1",
        detector_factory(),
        IngestOptions(chunk_frames=CHUNK),
    )
    assert report.already_ingested and report.sightings == 0
    assert_same(before, snapshot(ws))


def test_unknown_camera_is_refused_before_any_work(tmp_path, pipeline_district, model):
    ws = workspace(tmp_path)
    version = ws.index_for(model.version, model.dim)
    with pytest.raises(UnknownCameraError, match="cameras add"):
        ingest_source(
            ws, model, version, "c99", pipeline_district / "cameras" / "c1", detector_factory()
        )
    ws.close()


def test_two_ingests_of_one_camera_cannot_run_at_once(tmp_path, pipeline_district):
    ws = workspace(tmp_path)
    register(ws, pipeline_district)
    env = {**os.environ, "REUNITE_DATA_DIR": str(tmp_path)}
    with run_job(ws.db, "ingest", "camera:c1", {}):
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "reunite.cli",
                "ingest",
                str(pipeline_district / "cameras" / "c1"),
                "--camera",
                "c1",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 2, done.stderr
    assert "already works on camera:c1" in done.stderr and "Traceback" not in done.stderr
    with (
        pytest.raises(JobConflictError),
        run_job(ws.db, "ingest", "camera:c2", {}),
        run_job(ws.db, "ingest", "camera:c2", {}),
    ):
        pass
    ws.close()


def test_disk_full_mid_ingest_loses_nothing_and_resumes_to_the_clean_result(
    tmp_path, pipeline_district, model, clean_run
):
    ws = workspace(tmp_path)
    real_put, calls = ws.crops.put, [0]

    def put_until_full(data: bytes) -> str:  # the disk fills up after 40 crops
        calls[0] += 1
        if calls[0] > 40:
            raise DiskFullError("no space left on device while writing a crop")
        return real_put(data)

    ws.crops.put = put_until_full
    with pytest.raises(DiskFullError):
        ingest_all(ws, pipeline_district, model)
    with ws.db.session() as session:
        job = session.scalars(select(Job).order_by(Job.id.desc())).first()
        assert job.status == FAILED and "no space" in job.message
    ws.crops.put = real_put  # space freed
    ingest_all(ws, pipeline_district, model)
    assert_same(snapshot(clean_run[0]), snapshot(ws))
    ws.close()


def _cli(args: list[str], data_dir: Path) -> subprocess.Popen:
    env = {**os.environ, "REUNITE_DATA_DIR": str(data_dir), "REUNITE_LOG_LEVEL": "WARNING"}
    return subprocess.Popen(
        [sys.executable, "-m", "reunite.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def kill_after_progress(
    proc: subprocess.Popen,
    data_dir: Path,
    count_sql: str,
    rng: random.Random,
    max_delay: float = 1.5,
) -> None:
    """SIGKILL the job at a random moment after its first checkpoint is in the database."""
    import sqlite3

    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with sqlite3.connect(data_dir / "reunite.db", timeout=5) as db:
                if db.execute(count_sql).fetchone()[0] > 0:
                    break
        except sqlite3.OperationalError:
            pass  # tables not created yet
        time.sleep(0.02)
    time.sleep(rng.uniform(0.0, max_delay))
    assert proc.poll() is None, "the job finished before it could be killed: make it longer"
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_kill_9_during_ingest_then_resume_equals_a_clean_run(
    tmp_path, pipeline_district, clean_run
):
    ws = workspace(tmp_path)
    register(ws, pipeline_district)
    ws.close()
    args = [
        "ingest",
        str(pipeline_district / "cameras" / "c1"),
        "--camera",
        "c1",
        "--chunk-frames",
        str(CHUNK),
    ]
    proc = _cli(args, tmp_path)
    kill_after_progress(proc, tmp_path, "SELECT count(*) FROM ingest_chunks", random.Random(4))
    resumed = _cli(args, tmp_path)
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    ws = workspace(tmp_path)
    clean = {k: v for k, v in snapshot(clean_run[0]).items() if k[0] == "c1"}
    assert_same(clean, snapshot(ws))
    with ws.db.session() as session:
        statuses = [j.status for j in session.scalars(select(Job).order_by(Job.id))]
    assert statuses[-1] == "done" and statuses[0] in ("interrupted", "done")
    ws.close()


def test_truncated_video_ingests_what_is_readable_and_records_the_error(
    tmp_path, pipeline_district, model
):
    frames = sorted((pipeline_district / "cameras" / "c1" / "img1").glob("*.jpg"))
    video = tmp_path / "c1_20261130T053640Z.avi"
    first = cv2.imread(str(frames[0]))
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 2.0, first.shape[1::-1])
    for path in frames:
        writer.write(cv2.imread(str(path)))
    writer.release()
    data = video.read_bytes()
    video.write_bytes(data[: len(data) * 2 // 3])
    ws = workspace(tmp_path / "data")
    register(ws, pipeline_district)
    version = ws.index_for(model.version, model.dim)
    with run_job(ws.db, "ingest", "camera:c1", {}) as job:
        report = ingest_source(
            ws,
            model,
            version,
            "c1",
            video,
            detector_factory(),
            IngestOptions(chunk_frames=CHUNK),
            job,
        )
        job_id = job.id
    assert 0 < report.frames < len(frames)
    assert report.sightings > 0
    with ws.db.session() as session:
        assert session.get(Job, job_id).errors, "the unreadable tail is recorded on the job"
    ws.close()


def test_a_clip_with_nobody_gives_no_sightings_and_no_error(tmp_path, model):
    folder = tmp_path / "empty" / "img1"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    background = rng.integers(60, 200, (360, 640, 3), dtype=np.uint8)
    for i in range(30):
        noisy = np.clip(background + rng.normal(0, 2, background.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(str(folder / f"{i + 1:06d}_{1795644400000 + 500 * i}.jpg"), noisy)
    ws = workspace(tmp_path / "data")
    with ws.db.session() as session:
        from reunite.pipeline.cameras import CameraSpec

        add_camera(session, CameraSpec("empty", "Empty street"))
    version = ws.index_for(model.version, model.dim)
    report = ingest_source(ws, model, version, "empty", folder, detector_factory())
    assert report.frames == 30 and report.sightings == 0 and not report.errors
    ws.close()


def test_reindex_switches_atomically_and_survives_kill_9(tmp_path, pipeline_district, clean_run):
    """Reindex the clean run's sightings with the colour histogram (a real, fast model): killed
    at a random point and resumed, it ends where an uninterrupted reindex ends."""
    import shutil

    src = clean_run[0].data_dir
    copies = []
    for name in ("uninterrupted", "killed"):
        target = tmp_path / name
        shutil.copytree(src, target)
        copies.append(target)
    args = ["reindex", "--model", "color_histogram", "--batch-size", "1"]
    assert _cli(args, copies[0]).wait(timeout=300) == 0
    proc = _cli(args, copies[1])
    kill_after_progress(
        proc,
        copies[1],
        "SELECT count(*) FROM embeddings WHERE model LIKE 'color_histogram@%'",
        random.Random(7),
        max_delay=0.1,
    )
    ws = workspace(copies[1])
    assert ws.active_version().model.startswith("reunite-"), "queries still use the old index"
    ws.close()
    assert _cli(args, copies[1]).wait(timeout=300) == 0
    results = []
    for data_dir in copies:
        ws = workspace(data_dir)
        assert ws.active_version().model == "color_histogram@1.0.0"
        results.append(snapshot(ws))
        ws.close()
    assert_same(*results)


def test_purge_deletes_old_sightings_with_their_crops_and_index_entries(tmp_path, clean_run, model):
    import shutil
    from datetime import timedelta

    from reunite.pipeline.retention import purge

    shutil.copytree(clean_run[0].data_dir, tmp_path / "data")
    ws = workspace(tmp_path / "data")
    with ws.db.session() as session:
        times = sorted(s.start_time for s in session.scalars(select(Sighting)))
        before = len(times)
    middle = times[len(times) // 2]
    report = purge(ws, timedelta(minutes=1), reference=middle + timedelta(minutes=1))
    assert report.cutoff == middle and report.sightings == sum(t < middle for t in times) > 0
    with ws.db.session() as session:
        left = list(session.scalars(select(Sighting)))
        assert all(s.start_time >= middle for s in left) and len(left) == before - report.sightings
        shas = set(session.scalars(select(Crop.sha256)))
        frames = {s.frame_sha256 for s in left if s.frame_sha256}
    assert frames, "every sighting keeps the frame of its best crop"
    # Crop and frame files of purged sightings are deleted; a frame shared with a sighting that
    # stays is kept.
    assert set(ws.crops.iter_all()) == shas | frames
    assert report.crop_files > 0
    store = ws.open_store(ws.active_version())
    assert store.count() == len(left)
    ws.close()


def test_reindex_into_hnsw_with_the_same_model_reuses_the_embeddings(tmp_path, clean_run):
    import shutil

    shutil.copytree(clean_run[0].data_dir, tmp_path / "data")
    env_args = ["reindex", "--model", "default", "--kind", "hnsw"]
    proc = _cli(env_args, tmp_path / "data")
    assert proc.wait(timeout=300) == 0, proc.stderr.read()
    ws = workspace(tmp_path / "data")
    version = ws.active_version()
    assert version.kind == "hnsw" and version.model == clean_run[0].active_version().model
    assert_same(snapshot(clean_run[0]), snapshot(ws))
    bad = _cli(["reindex", "--model", "default", "--kind", "annoy"], tmp_path / "data")
    assert bad.wait(timeout=120) == 2 and "unknown index kind" in bad.stderr.read()
    ws.close()


def test_the_main_job_on_a_rendered_district_writes_ranks_and_a_report(tmp_path, pipeline_district):
    import json

    out = tmp_path / "demo"
    env = {**os.environ, "COLUMNS": "200", "REUNITE_LOG_LEVEL": "WARNING"}
    done = subprocess.run(
        [sys.executable, "-m", "reunite.cli", "demo", "--district", str(pipeline_district),
         "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "rank of first correct sighting" in done.stderr and "recall@10" in done.stderr
    results = json.loads((out / "results.json").read_text())
    main = results["variants"]["tracklet (quality-weighted mean)"]
    cases = json.loads((pipeline_district / "cases.json").read_text())
    assert main["cases"] == len(cases)
    assert main["recall@10"] is None or 0 <= main["recall@10"] <= 1  # None: no answerable case
    assert results["frames"] == 270 and results["frames_per_s_per_camera"] > 0
    page = (out / "report.html").read_text()
    assert page.count("data:image/jpeg;base64,") >= len(cases), "query stills and thumbnails inline"
    again = subprocess.run(
        [sys.executable, "-m", "reunite.cli", "demo", "--district", str(pipeline_district),
         "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert again.returncode == 2 and "--overwrite" in again.stderr

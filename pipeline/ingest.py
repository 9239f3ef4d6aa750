"""Ingest: footage in, sightings out — detect, track, keep the best crops, embed, store, index.

Footage is processed in *chunks* of ``chunk_frames`` sampled frames (a minute at 2 fps by
default). Each chunk starts a fresh background model (warmed up on its first frames) and a fresh
tracker; what a stateful detector learnt about the camera over earlier chunks (person scale,
shadow depth) is carried on and saved with the chunk. A chunk is committed in one database
transaction together with the checkpoint that says where the next chunk starts and that detector
state, so its result depends only on its own frames and the checkpoint before it. That makes
resumption exact: an ingest killed at any point (Ctrl-C, kill -9, power loss) and run again skips
the committed chunks, re-does the interrupted one from its first frame, and ends with the same
sightings as a run that was never interrupted. The price is that a person crossing a chunk
boundary becomes two sightings of the same camera, which matching handles like any other pair.

Re-running an ingest of the same file for the same camera adds nothing: a source is recognised by
its content fingerprint, not its name.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from itertools import chain, islice
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select

from reunite.errors import InvalidOptionError
from reunite.pipeline.attributes import describe_drafts
from reunite.pipeline.cameras import get_camera
from reunite.pipeline.crop_store import CropStore
from reunite.pipeline.detection import PersonDetector, StatefulDetector
from reunite.pipeline.embedding_model import EmbeddingModel
from reunite.pipeline.jobs import JobHandle, now
from reunite.pipeline.overlap import ChunkWriter, prefetch
from reunite.pipeline.quality import crop_quality, cut_crop
from reunite.pipeline.schema import (
    Crop,
    Embedding,
    IndexVersion,
    IngestChunk,
    Sighting,
    SightingAttributes,
    Source,
)
from reunite.pipeline.sightings import BestCrops, CropCandidate, SightingDraft, embed_sightings
from reunite.pipeline.sources import Frame, FrameSource, open_source
from reunite.pipeline.tracking import ByteTracker, Tracklet
from reunite.pipeline.workspace import Workspace

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int | None, int], None]
"""Called after each frame: frames done, frames expected (None for streams), sightings found."""


@dataclass(frozen=True, slots=True)
class IngestOptions:
    fps: float = 2.0
    chunk_frames: int = 120
    warmup_frames: int = 10
    crops_per_sighting: int = 8
    min_crop_height: float = 40.0
    start_time: datetime | None = None
    max_reconnects: int = 5
    reconnect_base_s: float = 0.5
    attributes: bool = True
    """Predict and store each sighting's 인상착의 attributes (description search needs them)."""
    pipelined: bool = True
    """Embed and store chunk N on a writer thread while chunk N + 1 is tracked (same result)."""
    prefetch_frames: int = 8
    """Frames a reader thread decodes ahead of detection (0: read in line)."""

    def __post_init__(self) -> None:
        if not 0 < self.fps <= 60:
            raise InvalidOptionError(f"--fps must be in (0, 60], got {self.fps}")
        if self.chunk_frames < 10:
            raise InvalidOptionError(f"chunk_frames must be >= 10, got {self.chunk_frames}")
        if not 1 <= self.crops_per_sighting <= 32:
            raise InvalidOptionError(
                f"crops per sighting must be 1..32, got {self.crops_per_sighting}"
            )


@dataclass
class IngestReport:
    camera_id: str
    uri: str
    source_id: int
    frames: int = 0
    sightings: int = 0
    chunks: int = 0
    already_ingested: bool = False
    resumed_from_chunk: int = 0
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    """Where the time went: read, detect, track, crops, embed, store."""

    @property
    def frames_per_s(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def _warm_up(detector: PersonDetector, frames: list[Frame]) -> None:
    warm_up = getattr(detector, "warm_up", None)
    if warm_up is not None:
        warm_up([f.image for f in frames])


def _timed(frames: Iterator[Frame], timings: dict[str, float]) -> Iterator[Frame]:
    """Pass frames through, adding the time spent reading and decoding them to ``read``."""
    while True:
        started = time.perf_counter()
        frame = next(frames, None)
        timings["read"] = timings.get("read", 0.0) + time.perf_counter() - started
        if frame is None:
            return
        yield frame


def _add_time(timings: dict[str, float], stage: str, started: float) -> float:
    now_s = time.perf_counter()
    timings[stage] = timings.get(stage, 0.0) + now_s - started
    return now_s


def track_chunk(
    frames: Iterator[Frame],
    detector: PersonDetector,
    options: IngestOptions,
    on_frame: Callable[[], None] = lambda: None,
    timings: dict[str, float] | None = None,
) -> tuple[list[SightingDraft], int, int | None]:
    """Detect and track people over one chunk; returns drafts, frames read, last frame index.

    ``timings`` (seconds per stage: read, detect, track, crops) is added to when given."""
    timings = {} if timings is None else timings
    frames = _timed(frames, timings)
    head = list(islice(frames, options.warmup_frames))
    if not head:
        return [], 0, None
    clock = time.perf_counter()
    _warm_up(detector, head)
    clock = _add_time(timings, "detect", clock)
    tracker = ByteTracker()
    crops: dict[int, BestCrops] = {}
    best_frames: dict[int, np.ndarray] = {}
    finished: list[Tracklet] = []
    count, last_index = 0, None
    for frame in chain(head, frames):
        clock = time.perf_counter()
        detections = detector.detect(frame.image)
        clock = _add_time(timings, "detect", clock)
        assigned = tracker.update(detections, frame.index, frame.timestamp.timestamp())
        clock = _add_time(timings, "track", clock)
        for tracked in assigned:
            box = tracked.detection
            others = [d for d in detections if d is not box]
            quality = crop_quality(frame.image, box, others)
            keeper = crops.setdefault(tracked.track_id, BestCrops(options.crops_per_sighting))
            if keeper.would_keep(quality.score, frame.index):  # cut only crops that are kept
                candidate = CropCandidate(
                    cut_crop(frame.image, box), box, quality, frame.index, frame.timestamp
                )
                keeper.offer(candidate)
                if keeper.best_first()[0] is candidate:
                    # The frame of the best crop so far: kept by reference (frames are not
                    # copied), one per live track, and stored with the sighting for context.
                    best_frames[tracked.track_id] = frame.image
        finished.extend(tracker.pop_finished())
        _add_time(timings, "crops", clock)
        count, last_index = count + 1, frame.index
        on_frame()
    finished.extend(tracker.finish())
    drafts = []
    for tracklet in finished:
        keeper = crops.get(tracklet.track_id)
        if keeper is None:
            continue
        best = keeper.best_first()
        if best[0].box.height < options.min_crop_height:
            continue
        drafts.append(
            SightingDraft(
                track_id=tracklet.track_id,
                start_time=_utc(tracklet.timestamps[0]),
                end_time=_utc(tracklet.timestamps[-1]),
                frames=len(tracklet.frame_indices),
                crops=best,
                frame=best_frames.get(tracklet.track_id),
            )
        )
    drafts.sort(key=lambda d: d.track_id)
    return drafts, count, last_index


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@dataclass(frozen=True)
class _Resume:
    """Where an ingest of one source stands: what a (re)started ingest continues from."""

    source_id: int
    finished: bool
    next_chunk: int = 0
    next_frame: int = 0
    frames_done: int = 0
    detector_state: dict[str, Any] | None = None


def _find_source(ws: Workspace, camera_id: str, source: FrameSource) -> _Resume:
    """Register this footage for the camera, or find how far an earlier ingest of it got."""
    fingerprint = source.fingerprint()
    with ws.db.session() as session:
        get_camera(session, camera_id)
        row = session.scalars(
            select(Source).where(Source.camera_id == camera_id, Source.fingerprint == fingerprint)
        ).first()
        if row is None:
            row = Source(
                camera_id=camera_id,
                uri=source.uri,
                kind=source.kind,
                fingerprint=fingerprint,
                created_at=now(),
            )
            session.add(row)
            session.flush()
        chunks = list(
            session.scalars(
                select(IngestChunk)
                .where(IngestChunk.source_id == row.id)
                .order_by(IngestChunk.chunk_index)
            )
        )
        if not chunks:
            return _Resume(row.id, row.finished_at is not None)
        last = chunks[-1]
        return _Resume(
            row.id,
            row.finished_at is not None,
            last.chunk_index + 1,
            last.next_frame_index,
            sum(c.frames for c in chunks),
            last.detector_state,
        )


def _store_chunk(
    ws: Workspace,
    model: EmbeddingModel,
    version: IndexVersion,
    job: JobHandle | None,
    camera_id: str,
    source_id: int,
    chunk_index: int,
    drafts: list[SightingDraft],
    frames: int,
    next_frame_index: int,
    errors: list[str],
    progress: tuple[int, int | None],
    detector_state: dict[str, Any] | None,
    attributes: tuple[str, list[dict]] | None = None,
) -> None:
    """Crops to disk, then sightings + chunk checkpoint in one transaction, then the index.
    ``attributes``: (attribute model version, each draft's probabilities), stored alongside."""
    crop_shas = [[ws.crops.put(CropStore.encode(c.image)) for c in d.crops] for d in drafts]
    frame_shas = [
        ws.crops.put(CropStore.encode(d.frame, quality=80)) if d.frame is not None else None
        for d in drafts
    ]
    with ws.db.session() as session:
        rows = []
        for draft, shas, frame_sha in zip(drafts, crop_shas, frame_shas, strict=True):
            best = draft.best.box
            sighting = Sighting(
                camera_id=camera_id,
                source_id=source_id,
                chunk_index=chunk_index,
                track_id=draft.track_id,
                start_time=draft.start_time,
                end_time=draft.end_time,
                frames=draft.frames,
                quality=draft.quality,
                x1=best.x1,
                y1=best.y1,
                x2=best.x2,
                y2=best.y2,
                thumbnail_sha256=shas[0],
                frame_sha256=frame_sha,
            )
            sighting.crops = [
                Crop(
                    sha256=sha,
                    frame_index=c.frame_index,
                    time=c.time,
                    x1=c.box.x1,
                    y1=c.box.y1,
                    x2=c.box.x2,
                    y2=c.box.y2,
                    quality=c.quality.score,
                    width=c.image.shape[1],
                    height=c.image.shape[0],
                )
                for c, sha in zip(draft.crops, shas, strict=True)
            ]
            sighting.embeddings = [Embedding.from_array(model.version, draft.vector)]
            rows.append(sighting)
        session.add_all(rows)
        session.add(
            IngestChunk(
                source_id=source_id,
                chunk_index=chunk_index,
                frames=frames,
                sightings=len(rows),
                errors=errors,
                next_frame_index=next_frame_index,
                finished_at=now(),
                detector_state=detector_state,
            )
        )
        session.flush()
        ids = np.array([r.id for r in rows], dtype=np.int64)
        if attributes is not None:
            attribute_model, probabilities = attributes
            session.add_all(
                SightingAttributes(sighting_id=r.id, model=attribute_model, probabilities=p)
                for r, p in zip(rows, probabilities, strict=True)
                if p
            )
        if job is not None:
            job.checkpoint(
                session,
                {
                    "source_id": source_id,
                    "next_chunk": chunk_index + 1,
                    "next_frame": next_frame_index,
                },
                progress[0],
                progress[1],
            )
            job.add_errors(session, errors)
    if len(ids):
        with ws.writing(version) as store:
            store.add(
                ids,
                np.stack([d.vector for d in drafts]),
                [camera_id] * len(ids),
                [d.start_time for d in drafts],
            )


def ingest_source(
    ws: Workspace,
    model: EmbeddingModel,
    version: IndexVersion,
    camera_id: str,
    location: str | Path,
    detector_factory: Callable[[], PersonDetector],
    options: IngestOptions = IngestOptions(),
    job: JobHandle | None = None,
    on_progress: ProgressCallback | None = None,
) -> IngestReport:
    """Ingest one video file, frame folder or stream for ``camera_id``; resumable (see module)."""
    started = time.perf_counter()
    source = open_source(
        location,
        fps=options.fps,
        start_time=options.start_time,
        max_reconnects=options.max_reconnects,
        reconnect_base_s=options.reconnect_base_s,
    )
    resume = _find_source(ws, camera_id, source)
    source_id, chunk_index = resume.source_id, resume.next_chunk
    report = IngestReport(camera_id, source.uri, source_id, resumed_from_chunk=chunk_index)
    if resume.finished:
        report.already_ingested = True
        return report
    total = source.estimated_frames()
    frames = prefetch(source.frames(resume.next_frame), options.prefetch_frames)
    detector = detector_factory()
    if resume.detector_state is not None and isinstance(detector, StatefulDetector):
        detector.load_state(resume.detector_state)
    seen_errors = 0
    progress_done = resume.frames_done

    def tick() -> None:
        nonlocal progress_done
        progress_done += 1
        if on_progress is not None:
            on_progress(progress_done, total, report.sightings)

    def write_chunk(
        chunk_index: int,
        drafts: list[SightingDraft],
        count: int,
        next_frame: int,
        errors: list[str],
        progress: tuple[int, int | None],
        detector_state: dict[str, Any] | None,
    ) -> None:
        """Embed, describe and store one tracked chunk (on the writer thread when pipelined)."""
        clock = time.perf_counter()
        embed_sightings(drafts, model.embedder)
        clock = _add_time(report.stage_seconds, "embed", clock)
        attributes = describe_drafts(drafts, model.version) if options.attributes else None
        clock = _add_time(report.stage_seconds, "attributes", clock)
        _store_chunk(
            ws,
            model,
            version,
            job,
            camera_id,
            source_id,
            chunk_index,
            drafts,
            count,
            next_frame,
            errors,
            progress,
            detector_state,
            attributes,
        )
        _add_time(report.stage_seconds, "store", clock)
        report.frames += count
        report.sightings += len(drafts)
        report.chunks += 1
        report.errors.extend(errors)

    writer = ChunkWriter(options.pipelined)
    try:
        while True:
            chunk = islice(frames, options.chunk_frames)
            drafts, count, last_index = track_chunk(
                chunk, detector, options, tick, report.stage_seconds
            )
            if count == 0:
                break
            errors = list(source.errors[seen_errors:])
            seen_errors = len(source.errors)
            state = detector.state() if isinstance(detector, StatefulDetector) else None
            writer.submit(
                partial(
                    write_chunk,
                    chunk_index,
                    drafts,
                    count,
                    last_index + 1,
                    errors,
                    (progress_done, total),
                    state,
                )
            )
            chunk_index += 1
            if count < options.chunk_frames:
                break
    finally:
        writer.close()  # the last chunk is stored (or its error raised) before anything else
        frames.close()
    tail_errors = source.errors[seen_errors:]
    with ws.db.session() as session:
        row = session.get(Source, source_id)
        if source.kind != "stream":
            row.finished_at = now()
        if job is not None:
            job.add_errors(session, list(tail_errors))
    report.errors.extend(tail_errors)
    report.seconds = time.perf_counter() - started
    return report
